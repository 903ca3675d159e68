"""Secrets out of text that leaves the process: answers, audit logs, our own logs.

A backup target URL can carry credentials (`cifs://admin:password@host/share`, a presigned
`?X-Amz-Signature=...`), and rule messages quote target URLs. `redact_urls` replaces the
user information of every URL in a text, and the values of query parameters that look like
secrets, wherever the URL sits in the text.
"""

from __future__ import annotations

import re

MASK = "***"
# Schemes whose part before '@' names a bucket or container, not a user: Longhorn's
# `s3://bucket@region/path` and `azblob://container@endpoint/path`. Kept, so that a message
# still says which store it means, unless it holds a ':' (a name never does; a password may).
_NAMED_STORE = frozenset({"s3", "azblob"})
# The authority's user information runs to its last '@': a password may hold an '@'.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^\s/?#]*)@")
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;][^=&;\s#]*(?:pass|secret|token|key|sig|credential|auth|session)[^=&;\s#]*=)"
    r"[^&;\s#'\"]*",
    re.IGNORECASE,
)


def _userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    if scheme.lower() in _NAMED_STORE and ":" not in userinfo and "%" not in userinfo:
        return match[0]
    return f"{scheme}://{MASK}@"


def redact_urls(text: str) -> str:
    """`text` with URL credentials and secret-looking query values replaced by ***."""
    if "://" not in text and "=" not in text:
        return text  # the usual message: nothing to look at
    return _SECRET_PARAM.sub(lambda m: m["key"] + MASK, _USERINFO.sub(_userinfo, text))


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how many were cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"{text[:limit]}... ({cut} more characters)"
