"""The policy's loopback test (CEL, by spelling) refuses exactly the hosts Python's does."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from longhorn_bi.engine.rules.cel_hosts import cel_is_loopback, is_loopback_host
from tests.go_url_cases import HOSTS
from tests.policy.runtime import new_env

_ENV = new_env()
_LOOPBACK: Any = _ENV.compile(cel_is_loopback("object.h.lowerAscii()"))


def cel_says(host: str) -> bool:
    value = _LOOPBACK.eval(_ENV.Activation({"object": {"h": host}})).value()
    assert type(value) is bool, value
    return value


# IPv6 text around :: and ::1, right and wrong: the parts the regular expressions count.
_GROUPS = ["0", "00", "0000", "00000", "1", "01", "0001", "ffff", "FFFF", "7f00", "7fff", "2", ""]
_V4 = ["0.0.0.1", "0.0.0.0", "127.0.0.1", "127.9.255.1", "127.0.0.256", "127.01.0.1", "10.0.0.1"]


@st.composite
def ipv6_like(draw: st.DrawFn) -> str:
    zeros = st.sampled_from(["0", "0000", "", ""])  # mostly zeros: near :: and ::1
    groups = draw(st.lists(zeros | st.sampled_from(_GROUPS), min_size=1, max_size=10))
    text = ":".join(groups)
    if draw(st.booleans()):
        text += ":" + draw(st.sampled_from(_V4))
    return text + draw(st.sampled_from(["", "", "%eth0", "%", "%a%b", "%25x"]))


HOST_NAMES = st.sampled_from(
    [
        *HOSTS,
        *("localhost.localdomain", "x.LOCALHOST", "localhostx", "127.0.0.1%x", "0.0.0.0"),
        *("localhost.", "x.localhost.", "localhost..", "127.0.0.1.", "localhost.localdomain."),
    ]
)


@settings(max_examples=3000, deadline=None)
@given(host=ipv6_like() | HOST_NAMES | st.sampled_from(_V4) | st.text(max_size=8))
def test_cel_and_python_refuse_the_same_hosts(host: str) -> None:
    host = host.strip("[]")
    assert cel_says(host) == is_loopback_host(host), host
    event(f"loopback: {is_loopback_host(host)}")


def test_the_addresses_longhorn_names_are_refused() -> None:
    # go-common-libs net/ip.go IsLoopbackHost (longhorn-manager v1.12.1) names these.
    for host in ("localhost", "127.0.0.1", "0.0.0.0", "::1"):
        assert cel_says(host) and is_loopback_host(host)
    # Not named, but LookupIP finds only loopback for them (the final dot is the root).
    for host in ("localhost.", "127.0.0.2"):
        assert cel_says(host) and is_loopback_host(host)
    for host in ("example.com", "10.0.0.1", "::2", "fe80::1", "::ffff:10.0.0.1"):
        assert not cel_says(host) and not is_loopback_host(host)
