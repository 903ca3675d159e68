"""Go's `net/url.ParseRequestURI` and `URL.Hostname`, as far as a URL's validity, scheme and host.

Longhorn's BackingImage validator checks a download URL with ParseRequestURI (longhorn-manager
webhook/resources/backingimage/validator.go, validateDownloadParameters, v1.12.1), and
Kubernetes' CEL `isURL()` and `url()` call the same function (k8s.io/apiserver
pkg/cel/library/urls.go, v1.30.0). Following Go here, not Python's urlsplit, makes the rule
refuse what Longhorn refuses and lets the policy's `isURL` agree with it. Written after
src/net/url/url.go of Go 1.19 (parse, parseAuthority, parseHost, unescape, shouldEscape,
getScheme, validUserinfo, splitHostPort); tests/test_go_url.py holds URLs with the answers of
a real Go 1.19 (tools/gourl). Go works on bytes: so does this module.
"""

from __future__ import annotations

from dataclasses import dataclass

_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
# shouldEscape(c, encodeHost) is false for these besides letters and digits (Go 1.19).
_HOST_OK = _ALNUM | frozenset(b"!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_OK = _ALNUM | frozenset(b"-._:~!$&'()*+,;=%@")
_SCHEME_REST = _ALNUM | frozenset(b"+-.")


class GoURLError(ValueError):
    """ParseRequestURI's error; the text is Go's."""


@dataclass(frozen=True)
class GoURL:
    scheme: str  # lower case, as Go leaves it
    host: str  # host[:port], %-escapes decoded, brackets kept (Go's URL.Host)

    @property
    def hostname(self) -> str:
        """URL.Hostname(): the host without its port and without IPv6 brackets."""
        host = self.host
        colon = host.rfind(":")
        if colon != -1 and _valid_optional_port(host[colon:]):
            host = host[:colon]
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host


def parse_request_uri(url: str) -> GoURL:
    """url.ParseRequestURI(url), reduced to its scheme and host; GoURLError as Go fails."""
    raw = url.encode("utf-8", "surrogatepass")
    if any(b < 0x20 or b == 0x7F for b in raw):
        raise GoURLError("net/url: invalid control character in URL")
    if not raw:
        raise GoURLError("empty url")
    if raw == b"*":
        return GoURL("", "")
    scheme, rest = _scheme(raw)
    # A lone final '?' is ForceQuery; otherwise the raw query is cut off, and not checked.
    forced = rest.endswith(b"?") and rest.count(b"?") == 1
    rest = rest[:-1] if forced else rest.partition(b"?")[0]
    if not rest.startswith(b"/"):
        if scheme:
            return GoURL(scheme, "")  # opaque: "http:host" has no host
        raise GoURLError("invalid URI for request")
    host = b""
    if scheme and rest.startswith(b"//"):
        authority, slash, path = rest[2:].partition(b"/")
        rest = slash + path
        host = _authority_host(authority)
    _unescape(rest, "path")
    return GoURL(scheme, host.decode("utf-8", "replace"))


def _scheme(raw: bytes) -> tuple[str, bytes]:
    for i, c in enumerate(raw):
        if c in _ALNUM and not (i == 0 and 0x30 <= c <= 0x39):
            continue
        if c in _SCHEME_REST and i > 0:
            continue
        if c == 0x3A:  # ':'
            if i == 0:
                raise GoURLError("missing protocol scheme")
            return raw[:i].decode("ascii").lower(), raw[i + 1 :]
        return "", raw
    return "", raw


def _authority_host(authority: bytes) -> bytes:
    at = authority.rfind(b"@")
    host = _host(authority[at + 1 :])
    if at >= 0:
        userinfo = authority[:at]
        if not all(c in _USERINFO_OK for c in userinfo) or not _ascii(userinfo):
            raise GoURLError("net/url: invalid userinfo")
        for part in userinfo.split(b":", 1):
            _unescape(part, "userinfo")
    return host


def _ascii(raw: bytes) -> bool:
    # validUserinfo ranges over runes: any non-ASCII rune fails it.
    return all(c < 0x80 for c in raw)


def _host(host: bytes) -> bytes:
    if host.startswith(b"["):
        close = host.rfind(b"]")
        if close < 0:
            raise GoURLError("missing ']' in host")
        if not _valid_optional_port(host[close + 1 :].decode("latin-1")):
            raise GoURLError(f"invalid port {host[close + 1 :]!r} after host")
        zone = host[:close].find(b"%25")
        if zone >= 0:
            return (
                _unescape(host[:zone], "host")
                + _unescape(host[zone:close], "zone")
                + _unescape(host[close:], "host")
            )
    else:
        colon = host.rfind(b":")
        if colon != -1 and not _valid_optional_port(host[colon:].decode("latin-1")):
            raise GoURLError(f"invalid port {host[colon:]!r} after host")
    return _unescape(host, "host")


def _unescape(s: bytes, mode: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25:  # '%'
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise GoURLError(f"invalid URL escape {s[i : i + 3]!r}")
            value = int(s[i + 1 : i + 3], 16)
            if mode == "host" and value >> 4 < 8 and s[i : i + 3] != b"%25":
                raise GoURLError(f"invalid URL escape {s[i : i + 3]!r}")
            # In a zone any byte but a space must be one a host may hold (shouldEscape).
            zone_bad = s[i : i + 3] != b"%25" and value != 0x20 and value not in _HOST_OK
            if mode == "zone" and zone_bad:
                raise GoURLError(f"invalid URL escape {s[i : i + 3]!r}")
            out.append(value)
            i += 3
            continue
        if mode in ("host", "zone") and c < 0x80 and c not in _HOST_OK:
            raise GoURLError(f"invalid character {chr(c)!r} in host name")
        out.append(c)
        i += 1
    return bytes(out)


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= ch <= "9" for ch in port[1:]))
