"""Hostile clients and hostile objects, over real TLS to the real server on 127.0.0.1.

The server runs with small limits so that each bound is reached quickly; the waits below
are bounded by socket timeouts and say nothing about speed (benchmarks/bench_hostile.py
measures that).
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longhorn_bi.engine.backup_url import format_backup_url
from longhorn_bi.engine.facts import BackupTargetFact, ClusterFacts
from longhorn_bi.engine.rules import MAX_FINDINGS_PER_RULE
from longhorn_bi.engine.rules.schema import COMMON_TYPES, FIELD_TYPES, STRING
from longhorn_bi.webhook.app import LARGE_BODY, Settings, create_app
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.listener import Limits
from longhorn_bi.webhook.metrics import Metrics
from longhorn_bi.webhook.review import MAX_MESSAGE, MAX_WARNINGS
from longhorn_bi.webhook.tls import ReloadingTLS
from tests.webhook.helpers import (
    V112,
    BrokenFacts,
    ThreadedServer,
    backing_image,
    backup,
    client_context,
    cluster_facts,
    post,
    review,
)

LIMITS = Limits(
    max_connections=6,
    handshake_seconds=1.0,
    header_idle_seconds=0.5,
    body_seconds=0.5,
    max_body_bytes=1024 * 1024,
)
CIFS = "cifs://admin:hunter2@files.example/backups"


def _facts() -> ClusterFacts:
    base = cluster_facts()
    targets = (*(base.backup_targets or ()), BackupTargetFact("offsite", CIFS, True))
    return ClusterFacts(
        backup_targets=targets,
        backing_images=base.backing_images,
        backups=base.backups,
        volumes=base.volumes,
        complete=True,
        origin="cluster",
    )


def _server(certs: Path, source: StaticFacts) -> ThreadedServer:
    tls = ReloadingTLS(certs / "tls.crt", certs / "tls.key")
    settings_ = Settings(limits=LIMITS)
    return ThreadedServer(lambda: create_app(settings_, source, Metrics()), tls.context, LIMITS)


@pytest.fixture(scope="module")
def server(module_certs: Path) -> Iterator[ThreadedServer]:
    with _server(module_certs, StaticFacts(V112, _facts())) as running:
        yield running


def _tls(port: int, ca_file: Path) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return client_context(ca_file).wrap_socket(raw, server_hostname="127.0.0.1")


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (EOF or reset) within the socket timeout."""
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ConnectionError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def _answer(sock: ssl.SSLSocket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def _head(length: int, extra: str = "") -> bytes:
    return (
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


# ---- 1. a bounded server -------------------------------------------------------------------


def test_silent_connections_give_way_to_new_ones(
    server: ThreadedServer, module_certs: Path
) -> None:
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(6)]
    try:
        # At the cap, a review on a new connection takes the place of the oldest silent one.
        conn = server.connect(module_certs / "ca.crt")
        status, body = post(conn, review(backing_image()))
        assert (status, body["response"]["allowed"]) == (200, True)
        conn.close()
        assert _closed_by_server(held[0])
        assert server.site is not None and server.site.evicted >= 1
        # The others are dropped at the handshake deadline.
        assert all(_closed_by_server(sock) for sock in held[1:])
    finally:
        for sock in held:
            sock.close()


def test_connections_over_the_cap_are_closed_before_tls(
    server: ThreadedServer, module_certs: Path
) -> None:
    # Six connections past their handshake fill the cap: a seventh gets no TLS at all.
    held = [_tls(server.port, module_certs / "ca.crt") for _ in range(6)]
    try:
        assert server.site is not None
        refused = server.site.refused
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            assert _closed_by_server(extra)
        assert server.site.refused == refused + 1
    finally:
        for sock in held:
            sock.close()
        _until_released(server)


def _until_released(server: ThreadedServer) -> None:
    """Wait until the server has seen the closes (bounded: the server thread may lag)."""
    for _ in range(1000):
        if server.site is None or server.site.open_connections() < LIMITS.max_connections:
            return
        time.sleep(0.01)


def test_slow_headers_and_idle_connections_are_closed(
    server: ThreadedServer, module_certs: Path
) -> None:
    with _tls(server.port, module_certs / "ca.crt") as slow:
        slow.sendall(b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends them
        assert _closed_by_server(slow)
    with _tls(server.port, module_certs / "ca.crt") as idle:
        assert _closed_by_server(idle)  # says nothing at all
    with _tls(server.port, module_certs / "ca.crt") as kept:
        body = json.dumps(review(backing_image())).encode()
        kept.sendall(_head(len(body)) + body)
        assert _answer(kept)[0] == 200
        assert _closed_by_server(kept)  # kept alive, then idle past the limit


def test_a_slow_body_gets_a_408_and_the_connection_is_closed(
    server: ThreadedServer, module_certs: Path
) -> None:
    with _tls(server.port, module_certs / "ca.crt") as sock:
        sock.sendall(_head(1000) + b'{"apiVersion"')
        status, body = _answer(sock)
        assert status == 408
        assert "did not arrive" in body["message"]
        assert _closed_by_server(sock)


def test_a_declared_length_over_the_limit_is_refused_before_reading(
    server: ThreadedServer, module_certs: Path
) -> None:
    with _tls(server.port, module_certs / "ca.crt") as sock:
        sock.sendall(_head(3 * 1024 * 1024 * 1024))  # 3 GiB announced, nothing sent
        status, body = _answer(sock)
        assert status == 413
        assert f"larger than {LIMITS.max_body_bytes} bytes" in body["message"]


def test_compressed_bodies_are_not_inflated(server: ThreadedServer, module_certs: Path) -> None:
    # 40 MiB of JSON in a 40 KiB gzip: the API server never compresses, so it stays bytes.
    bomb = gzip.compress(b'{"a":"' + b"x" * (40 * 1024 * 1024) + b'"}')
    with _tls(server.port, module_certs / "ca.crt") as sock:
        sock.sendall(_head(len(bomb), "Content-Encoding: gzip\r\n") + bomb)
        status, body = _answer(sock)
        assert status == 400
        assert "not JSON" in body["message"]


def test_tls_1_2_offers_only_aead_suites(server: ThreadedServer, module_certs: Path) -> None:
    context = client_context(module_certs / "ca.crt")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE+AES128:ECDHE+AES256:!AESGCM:!CHACHA20")  # CBC only
    with pytest.raises((ssl.SSLError, ConnectionResetError)), _tls_with(server.port, context):
        pass
    context.set_ciphers("ALL")
    with _tls_with(server.port, context) as sock:
        name, _, _ = sock.cipher()  # type: ignore[misc]
        assert "GCM" in name or "CHACHA20" in name


def _tls_with(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


# ---- 2. bounded work and answers -----------------------------------------------------------


def test_the_worst_labels_give_a_short_denial(server: ThreadedServer, module_certs: Path) -> None:
    # ~700 KiB: over LARGE_BODY (reviewed in a thread), under the test body limit.
    labels = {f"bad key {i}": "" for i in range(35_000)}
    obj = backup("parrot", labels=labels)
    conn = server.connect(module_certs / "ca.crt")
    status, body = post(conn, review(obj))
    conn.close()
    answer = body["response"]
    assert status == 200 and answer["allowed"] is False
    assert len(json.dumps(review(obj))) > LARGE_BODY
    message = answer["status"]["message"]
    assert len(message) <= MAX_MESSAGE + 100
    assert f"stopped after {MAX_FINDINGS_PER_RULE} findings" in message
    assert len(answer.get("warnings", [])) <= MAX_WARNINGS


def test_target_urls_in_answers_carry_no_credentials(
    server: ThreadedServer, module_certs: Path
) -> None:
    # A restore naming the target "offsite" while reading another store: the answer's warning
    # names the target's URL, which carries a user and a password.
    obj = backing_image()
    obj["spec"]["sourceParameters"]["backup-url"] = format_backup_url("nfs://other:/x", "parrot")
    obj["spec"]["sourceParameters"]["backup-target-name"] = "offsite"
    conn = server.connect(module_certs / "ca.crt")
    status, body = post(conn, review(obj))
    conn.close()
    text = json.dumps(body)
    assert status == 200 and body["response"]["warnings"]
    assert "cifs://***@files.example/backups" in text
    assert "hunter2" not in text and "admin" not in text


# ---- 3. fail closed ------------------------------------------------------------------------


def test_an_internal_error_is_never_an_allow(module_certs: Path) -> None:
    with _server(module_certs, BrokenFacts(V112, ClusterFacts())) as broken:
        conn = broken.connect(module_certs / "ca.crt")
        status, body = post(conn, review(backing_image()))
        conn.close()
    assert status == 500
    assert "internal error" in body["message"] and "response" not in body


_URLISH = st.text(
    alphabet=st.sampled_from(list("[]%@:/?#&= \t.-_~+!$'()*,;aZ0é€\u202e\x00")), max_size=40
)
_STRINGS = st.one_of(
    st.text(max_size=40),
    _URLISH,
    st.builds(lambda tail: "s3://bucket@us-east-1/" + tail, _URLISH),
    st.builds(lambda tail: "http://[" + tail, _URLISH),
    st.builds(lambda tail: format_backup_url(CIFS, "parrot") + tail, _URLISH),
)
# Every string field the CRDs give either kind, and the sourceParameters each source reads.
_PARAM_KEYS = [
    "backup-url",
    "url",
    "concurrent-limit",
    "backing-image",
    "encryption",
    "secret",
    "secret-namespace",
    "volume-name",
    "export-type",
    "data-source-type",
    "backup-target-name",
]
_FIELDS = sorted(
    {
        (kind, path)
        for kind in ("BackingImage", "BackupBackingImage")
        for path, kind_type in {**COMMON_TYPES, **FIELD_TYPES[kind]}.items()
        if kind_type == STRING and "*" not in path and path[0] != "kind"
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    source=st.sampled_from(["restore", "download", "clone", "export-from-volume", "upload"]),
    params=st.dictionaries(st.sampled_from(_PARAM_KEYS), _STRINGS, max_size=4),
    fields=st.lists(st.tuples(st.sampled_from(_FIELDS), _STRINGS), max_size=3),
    label=st.tuples(_STRINGS, _STRINGS),
    operation=st.sampled_from(["CREATE", "UPDATE"]),
)
def test_every_string_the_crd_allows_is_judged_never_waved_through(
    server: ThreadedServer,
    module_certs: Path,
    source: str,
    params: dict[str, str],
    fields: list[tuple[tuple[str, tuple[str, ...]], str]],
    label: tuple[str, str],
    operation: str,
) -> None:
    image = backing_image(sourceType=source)
    image["spec"]["sourceParameters"].update(params)
    # An error whatever else the object holds: the answer must deny it.
    image["spec"]["sourceParameters"]["concurrent-limit"] = "0"
    bbi = backup("parrot", labels={label[0]: label[1]})
    for (kind, path), value in fields:
        target = image if kind == "BackingImage" else bbi
        node: Any = target
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    image["spec"]["sourceType"] = source  # kept: the error above needs a restore
    conn = server.connect(module_certs / "ca.crt")
    try:
        for obj in (image, bbi):
            old = backing_image() if obj is image else backup("parrot")
            status, body = post(conn, review(obj, operation=operation, old=old))
            assert status == 200, body
            answer = body["response"]
            if obj is image and source == "restore":
                assert answer["allowed"] is False, answer
            assert "hunter2" not in json.dumps(answer)
    finally:
        conn.close()
