"""Real HTTPS with certificates made by `certs`: TLS versions, fuzzed bodies, rotation."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longhorn_bi.webhook.app import Settings, create_app
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.metrics import Metrics
from longhorn_bi.webhook.tls import ReloadingTLS
from tests.webhook.conftest import make_certs
from tests.webhook.helpers import (
    V112,
    ThreadedServer,
    backing_image,
    backup,
    client_context,
    cluster_facts,
    post,
    review,
)


def _peer_cert(port: int, ca_file: Path) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_context(ca_file).wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_review_over_https_verifies_against_the_generated_ca(
    https_server: ThreadedServer, module_certs: Path
) -> None:
    conn = https_server.connect(module_certs / "ca.crt")
    status, body = post(conn, review(backing_image(), uid="tls-1"))
    assert status == 200
    assert body["response"] == {"uid": "tls-1", "allowed": True}
    conn.close()


def test_service_dns_name_verifies(https_server: ThreadedServer, module_certs: Path) -> None:
    context = client_context(module_certs / "ca.crt")
    with (
        socket.create_connection(("127.0.0.1", https_server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="longhorn-bi-webhook.longhorn-system.svc") as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


def test_tls_1_2_is_accepted_and_1_1_refused(
    https_server: ThreadedServer, module_certs: Path
) -> None:
    context = client_context(module_certs / "ca.crt")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", https_server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            # Offering TLS 1.1 is exactly the deprecated thing this test must do.
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with (
        socket.create_connection(("127.0.0.1", https_server.port), timeout=10) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        old.wrap_socket(raw, server_hostname="127.0.0.1")


def test_plain_http_on_the_tls_port_gets_no_answer(https_server: ThreadedServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", https_server.port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        post(conn, review(backing_image()))


# ---- fuzzing ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "uid",
    "kind",
    "operation",
    "namespace",
    "name",
    "object",
    "oldObject",
    "dryRun",
]
OBJECT_PATHS = [
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "labels"),
    ("spec",),
    ("spec", "sourceType"),
    ("spec", "sourceParameters"),
    ("spec", "sourceParameters", "backup-url"),
    ("spec", "sourceParameters", "concurrent-limit"),
    ("spec", "checksum"),
    ("spec", "userCreated"),
    ("spec", "backingImage"),
    ("spec", "minNumberOfCopies"),
    ("kind",),
    ("apiVersion",),
]


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@pytest.fixture(scope="module")
def fuzz_conn(https_server: ThreadedServer, module_certs: Path):
    conn = https_server.connect(module_certs / "ca.crt")
    yield conn
    conn.close()


def _check(status: int, body: Any) -> None:
    assert status in {200, 400}, (status, body)
    if status == 200:
        assert body["response"]["uid"]
        assert isinstance(body["response"]["allowed"], bool)
    else:
        assert body["code"] == 400
        assert body["message"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["BackingImage", "BackupBackingImage"]),
    operation=st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT"]),
    mutations=st.lists(st.tuples(st.sampled_from(OBJECT_PATHS), JSON), max_size=4),
    field=st.none() | st.tuples(st.sampled_from(FIELDS), JSON),
)
def test_fuzzed_reviews_never_500(fuzz_conn, kind, operation, mutations, field) -> None:
    obj = backing_image() if kind == "BackingImage" else backup()
    for path, value in mutations:
        _set(obj, path, value)
    body = review(obj, operation=operation, old=backing_image())
    if field is not None:
        body["request"][field[0]] = field[1]
    _check(*post(fuzz_conn, body))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_fuzzed_bodies_get_400(fuzz_conn, raw: bytes) -> None:
    status, body = post(fuzz_conn, raw)
    assert status == 400, (raw, body)
    _check(status, body)


# ---- certificate rotation -----------------------------------------------------------------


def _install(src: Path, dst: Path) -> None:
    """Replace the pair the way a kubelet updates a Secret volume: key first, both atomic."""
    for name in ("tls.key", "tls.crt"):
        tmp = dst / f".{name}.new"
        shutil.copyfile(src / name, tmp)
        tmp.replace(dst / name)


def test_certificate_rotation_under_load_fails_no_request(tmp_path: Path) -> None:
    live = make_certs(tmp_path / "live")
    # The new pairs come from new CAs: clients trust every CA, as the caBundle does
    # during a rotation.
    pairs = [make_certs(tmp_path / f"next{i}") for i in range(3)]
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(b"".join((p / "ca.crt").read_bytes() for p in [live, *pairs]))
    tls = ReloadingTLS(live / "tls.crt", live / "tls.key")
    reloads: list[bool] = []

    async def watcher() -> None:
        import logging

        await tls.watch(0.05, logging.getLogger("test"), lambda r: reloads.append(r.changed))

    source = StaticFacts(V112, cluster_facts())
    app = lambda: create_app(Settings(), source, Metrics(), background=[watcher])  # noqa: E731
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def hammer(server: ThreadedServer) -> None:
        while not stop.is_set():
            # A new connection each time: every request does a handshake.
            conn = http.client.HTTPSConnection(
                "127.0.0.1", server.port, timeout=30, context=client_context(bundle)
            )
            try:
                status, body = post(conn, review(backing_image()))
                if status != 200 or body["response"]["allowed"] is not True:
                    failures.append(f"{status} {body}")
                answered[0] += 1
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                failures.append(repr(exc))
            finally:
                conn.close()

    with ThreadedServer(app, tls.context) as server:
        threads = [threading.Thread(target=hammer, args=(server,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        served = {_peer_cert(server.port, bundle)}
        try:
            for pair in pairs:
                before = answered[0]
                _install(pair, live)
                expected = _der(pair / "tls.crt")
                while _peer_cert(server.port, bundle) != expected:
                    time.sleep(0.01)  # the server polls the files every 50 ms
                served.add(expected)
                while answered[0] < before + 20:  # requests also ran under the new pair
                    time.sleep(0.01)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert failures == []
    assert len(served) == 4
    assert reloads.count(True) >= 3


def _der(pem_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


def test_a_mismatched_pair_keeps_the_old_certificate(tmp_path: Path) -> None:
    live = make_certs(tmp_path / "live")
    other = make_certs(tmp_path / "other")
    tls = ReloadingTLS(live / "tls.crt", live / "tls.key")
    original = _der(live / "tls.crt")
    shutil.copyfile(other / "tls.crt", live / "tls.crt")  # the key is still the old one
    result = tls.reload_if_changed()
    assert result.changed is False
    assert "KEY_VALUES_MISMATCH" in result.error or "mismatch" in result.error.lower()
    source = StaticFacts(V112, cluster_facts())
    with ThreadedServer(lambda: create_app(Settings(), source, Metrics()), tls.context) as server:
        assert _peer_cert(server.port, live / "ca.crt") == original
        shutil.copyfile(other / "tls.key", live / "tls.key")
        assert tls.reload_if_changed().changed is True
        assert _peer_cert(server.port, other / "ca.crt") == _der(other / "tls.crt")


def test_unreadable_files_are_a_clear_error(tmp_path: Path) -> None:
    from longhorn_bi.engine.errors import InvalidInput

    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")
    with pytest.raises(InvalidInput, match="--cert-file/--key-file"):
        ReloadingTLS(tmp_path / "tls.crt", tmp_path / "tls.key")


def test_a_backup_review_over_https(https_server: ThreadedServer, module_certs: Path) -> None:
    conn = https_server.connect(module_certs / "ca.crt")
    status, body = post(conn, review(backup("ghost")))
    assert status == 200
    assert "[LHB402]" in body["response"]["status"]["message"]
    conn.close()
