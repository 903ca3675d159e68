"""Loopback hosts, in Python and as the regular expressions the policy's CEL uses.

Kubernetes 1.30 cannot parse an IP address in a new policy (its `ip()` library is introduced
at 1.30, but a 1.30 API server compiles new expressions for 1.29: DefaultCompatibilityVersion
in k8s.io/apiserver pkg/cel/environment/base.go, v1.30.0), so the policy recognises the
addresses by their spelling. The spellings are generated here: every text Python's
`ipaddress` reads as one of the addresses `is_loopback_host` refuses, and no other
(tests/test_cel_hosts.py compares the two on generated hosts).
"""

from __future__ import annotations

import ipaddress
import re

from longhorn_bi.engine.rules.schema import cel_string

LOCALHOST_NAMES = ("localhost", "localhost.localdomain")
_NAMES = (*LOCALHOST_NAMES, *(f"{name}." for name in LOCALHOST_NAMES))
# Python's IPv6 text is at most 45 characters before a scope (`%zone`); the policy bounds the
# regular expression's input by it.
MAX_IPV6_TEXT = 45

# An IPv4 octet as ipaddress reads it: decimal, no leading zero.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_LOOPBACK = rf"127\.{_OCTET}\.{_OCTET}\.{_OCTET}"
IPV4_PATTERN = re.compile(rf"^({_V4_LOOPBACK}|0\.0\.0\.0)$")


def _ipv6_pattern() -> str:
    """IPv6 text whose value is :: or ::1, or ::ffff: and a 127/8 address (lower case)."""
    zero = "0{1,4}"
    # The last groups and how many of the 8 they stand for.
    tails = (
        ("0{0,3}[01]", 1),
        (r"0\.0\.0\.[01]", 2),
        (rf"ffff:{_V4_LOOPBACK}", 3),
        ("ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}", 3),
    )
    forms = [f"({zero}:){{{8 - count}}}{tail}" for tail, count in tails]
    for left in range(8):  # zero groups before '::', at most 7 groups written in all
        head = "" if left == 0 else f"{zero}(:{zero}){{{left - 1}}}"
        rights = [
            f"({zero}:){{0,{7 - left - count}}}{tail}" for tail, count in tails if left + count <= 7
        ]
        forms.append(f"{head}::({'|'.join(rights)})?" if rights else f"{head}::")
    return "^(" + "|".join(forms) + ")$"


IPV6_PATTERN = re.compile(_ipv6_pattern())


def is_loopback_host(host: str) -> bool:
    """localhost (and its subdomains), 127/8, ::1 (IPv4-mapped too), and the unspecified
    0.0.0.0 and ::, which a client reaches as its own host. Longhorn refuses localhost,
    127.0.0.1, 0.0.0.0, ::1 and what resolves to loopback (go-common-libs net/ip.go
    IsLoopbackHost, vendored by longhorn-manager v1.12.1)."""
    # A name with its final dot (`localhost.`) resolves as the name: Longhorn's LookupIP
    # finds loopback for it too.
    name = host.lower().removesuffix(".")
    if name in LOCALHOST_NAMES or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip.is_loopback or int(ip) == 0
    # By value, not is_loopback/is_unspecified: Python 3.13 changed those for mapped addresses.
    mapped = ip.ipv4_mapped
    return int(ip) in (0, 1) or (mapped is not None and mapped.is_loopback)


def cel_is_loopback(host: str) -> str:
    """CEL: `host` (an expression of a lower-cased host name) is one is_loopback_host refuses."""
    scope = f"{host}.indexOf('%')"
    address = f"({scope} < 0 ? {host} : {host}.substring(0, {scope}))"
    # ipaddress takes a scope only on IPv6, non-empty, with no second '%'.
    scope_ok = (
        f"({scope} < 0 || ({host}.lastIndexOf('%') == {scope} && {scope} < size({host}) - 1))"
    )
    return (
        f"({host} in {_cel_list(_NAMES)} || {host}.endsWith('.localhost') || "
        f"{host}.endsWith('.localhost.') || "
        f"{host}.matches({cel_string(IPV4_PATTERN.pattern)}) || "
        f"(size({address}) <= {MAX_IPV6_TEXT} && {scope_ok} && "
        f"{address}.matches({cel_string(IPV6_PATTERN.pattern)})))"
    )


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(map(cel_string, values)) + "]"
