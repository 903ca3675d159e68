"""LHB201's backup URLs as the policy's CEL can judge them: by their spelling.

CEL cannot parse a backup URL as engine/backup_url.py does (Python's urlsplit and parse_qsl,
which decode %-escapes and '+'), so the policy decides two sets and leaves the rest to the
webhook:
- certainly bad: URLs parse_backup_url refuses whatever the rest says: empty, a control or
  space character, no `<scheme>://` of a backupstore at the start, no query at all, no path
  (s3, nfs, azblob), no share (cifs), a host (vfs);
- plain: `<target>?backingImage=<name>` as Longhorn writes it (status.url; an NFS target's
  `?nfsOptions=...&backingImage=<name>` too), with the target in
  a plain alphabet (no port, IPv6 host, %-escape in the host, or fragment) that each
  scheme's parser accepts, and a valid name: all of them are accepted by parse_backup_url.
tests/test_cel_backup_url.py holds both to parse_backup_url on generated URLs.
"""

from __future__ import annotations

import re

from longhorn_bi.engine.backup_url import BACKING_IMAGE_PARAM, SCHEMES
from longhorn_bi.engine.names import MAX_NAME_LENGTH

# A path character: no '/', '?', '#', quote, control or space.
_PC = "[A-Za-z0-9._~%!$&()*+,;=:@-]"
_PC_NOT_DOT = "[A-Za-z0-9_~%!$&()*+,;=:@-]"
# A segment that is not '.' or '..' (_check_path refuses those), and one that is not empty.
_SEGMENT_SOME = rf"({_PC_NOT_DOT}{_PC}*|\.{_PC_NOT_DOT}{_PC}*|\.\.{_PC}+)"
_PATH = rf"(/{_SEGMENT_SOME}?)+"
_HOST = "[A-Za-z0-9._-]+"
_TARGETS = {
    # s3://bucket@region/path/ or s3://bucket/path/: a path is required (s3/s3.go).
    "s3": rf"s3://{_HOST}(@[A-Za-z0-9._-]*)?{_PATH}",
    # nfs://server:/export: no port, an absolute export path.
    "nfs": rf"nfs://([A-Za-z0-9._-]*@)?{_HOST}:?{_PATH}",
    # cifs://server/share/path: a share.
    "cifs": rf"cifs://([A-Za-z0-9._-]*@)?{_HOST}(/{_SEGMENT_SOME}?)*/{_SEGMENT_SOME}(/{_SEGMENT_SOME}?)*",
    # azblob://container@suffix/path: Azure's container name (no '--'; its length below).
    "azblob": rf"azblob://[a-z0-9](-?[a-z0-9])+(@[A-Za-z0-9._-]*)?{_PATH}",
    # vfs:///absolute/path: no host.
    "vfs": rf"vfs://{_PATH}",
}
# An NFS target's options come first when Longhorn writes the URL (`&backingImage=`).
_QUERY = rf"\?(nfsOptions=[A-Za-z0-9=,._:-]*&)?{BACKING_IMAGE_PARAM}="
PLAIN = re.compile("^(" + "|".join(_TARGETS.values()) + f"){_QUERY}[a-z0-9][a-z0-9_.-]+$")
AZBLOB_CONTAINER_LENGTH = re.compile("^azblob://[a-z0-9-]{3,63}[@/]")
# Case-blind, as Go's url.Parse reads a scheme (engine/backup_url.py); RE2 takes (?i) too.
SCHEME = re.compile(f"(?i)^({'|'.join(SCHEMES)})://")
CONTROL = re.compile(r"[\x00-\x20\x7f]")
# No path before the query (or the end): s3, nfs and azblob need one, cifs a share; a vfs
# target has no host. urlsplit's path then is empty (or only '/').
NO_PATH = re.compile(r"^((s3|nfs|azblob)://[^/?]*|cifs://[^/?]*/*)(\?|$)|^vfs://([^/]|$)")


def plain_name_fits(url: str) -> bool:
    """The name after the last '=' is at most MAX_NAME_LENGTH characters."""
    return len(url) - url.rfind("=") - 1 <= MAX_NAME_LENGTH


def is_certainly_bad(url: str) -> bool:
    return (
        url == ""
        or bool(CONTROL.search(url))
        or not SCHEME.match(url)
        or "?" not in url
        or bool(NO_PATH.match(url))
    )


def is_plain(url: str) -> bool:
    return (
        bool(PLAIN.match(url))
        and plain_name_fits(url)
        and (not url.startswith("azblob://") or bool(AZBLOB_CONTAINER_LENGTH.match(url)))
    )


def _cel(pattern: re.Pattern[str]) -> str:
    return "'" + pattern.pattern.replace("\\", "\\\\") + "'"


def cel_certainly_bad(url: str) -> str:
    """CEL of is_certainly_bad over `url` (a string expression)."""
    return (
        f"({url} == '' || {url}.matches({_cel(CONTROL)}) || !{url}.matches({_cel(SCHEME)}) || "
        f"!{url}.contains('?') || {url}.matches({_cel(NO_PATH)}))"
    )


def cel_plain(url: str) -> str:
    """CEL of is_plain over `url`."""
    return (
        f"({url}.matches({_cel(PLAIN)}) && "
        f"size({url}) - {url}.lastIndexOf('=') - 1 <= {MAX_NAME_LENGTH} && "
        f"(!{url}.startsWith('azblob://') || {url}.matches({_cel(AZBLOB_CONTAINER_LENGTH)})))"
    )
