"""The fake API server, driven by the real clients: the `kubernetes` package, aiohttp, kubectl."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.fakekube import FakeKubeServer, crd_file, write_kubeconfig

NS = "longhorn-system"
GROUP, VERSION = "longhorn.io", "v1beta2"


def backing_image(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BackingImage",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"sourceType": "download", "sourceParameters": {"url": "http://x/a.qcow2"}, **spec},
    }


@pytest.fixture
def api_client(fake_kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(fake_kubeconfig))
    yield api
    api.close()


@pytest.fixture
def crs(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body or "null")
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def test_discovery_version_and_preloaded_crds(api_client, fake_kube) -> None:
    assert client.VersionApi(api_client).get_code().git_version == fake_kube.git_version
    crds: Any = client.ApiextensionsV1Api(api_client).list_custom_resource_definition()
    assert sorted(c.metadata.name for c in crds.items) == [
        "backingimages.longhorn.io",
        "backupbackingimages.longhorn.io",
        "backuptargets.longhorn.io",
        "settings.longhorn.io",
        "volumes.longhorn.io",
    ]
    groups = client.ApisApi(api_client).get_api_versions()
    assert "longhorn.io" in [g.name for g in groups.groups]
    resources = client.CustomObjectsApi(api_client).get_api_resources(GROUP, VERSION)
    by_name = {r.name: r for r in resources.resources}
    assert by_name["backupbackingimages"].kind == "BackupBackingImage"
    assert by_name["backupbackingimages"].namespaced is True
    assert "watch" in by_name["settings"].verbs
    assert by_name["backingimages/status"].verbs == ["get", "patch", "update"]


def test_create_get_list_and_create_errors(crs, fake_kube) -> None:
    body = backing_image("bi-1") | {"status": {"ownerID": "ignored on create"}}
    created = crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", body)
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"]
    assert int(meta["resourceVersion"]) == fake_kube.resource_version
    assert "status" not in created  # the status subresource owns status
    got = crs.get_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", "bi-1")
    assert got == created
    listed = crs.list_namespaced_custom_object(GROUP, VERSION, NS, "backingimages")
    assert listed["kind"] == "BackingImageList"
    assert listed["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert [i["metadata"]["name"] for i in listed["items"]] == ["bi-1"]
    everywhere = crs.list_cluster_custom_object(GROUP, VERSION, "backingimages")
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["bi-1"]

    with pytest.raises(ApiException) as again:
        crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", body)
    assert status_of(again.value)["reason"] == "AlreadyExists"
    assert again.value.status == 409
    nameless = backing_image("x")
    del nameless["metadata"]["name"]
    with pytest.raises(ApiException) as invalid:
        crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", nameless)
    assert invalid.value.status == 422 and status_of(invalid.value)["reason"] == "Invalid"
    with pytest.raises(ApiException) as with_rv:  # e.g. re-creating an object read back
        crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", created)
    assert with_rv.value.status == 500 and "resourceVersion should not be set" in str(with_rv.value)
    with pytest.raises(ApiException) as missing:
        crs.get_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", "nope")
    assert status_of(missing.value)["message"] == 'backingimages.longhorn.io "nope" not found'


def test_server_side_apply_creates_then_merges(crs, fake_kube) -> None:
    def apply(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return crs.patch_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, NS, "backingimages", body["metadata"]["name"], body,
            _content_type="application/apply-patch+yaml", **kw,
        )  # fmt: skip

    # Like the real apiserver, an apply that creates answers 201, which kubernetes 37.0.1's
    # patch_namespaced_custom_object does not map to a return type: it returns None.
    assert apply(backing_image("bi-a"), field_manager="longhorn-bi") is None
    assert fake_kube.requests[-1][:2] == (
        "PATCH",
        f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/backingimages/bi-a",
    )
    first = crs.get_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", "bi-a")
    assert first["metadata"]["generation"] == 1
    managers = [(m["manager"], m["operation"]) for m in first["metadata"]["managedFields"]]
    assert managers == [("longhorn-bi", "Apply")]
    second = apply(backing_image("bi-a", minNumberOfCopies=2), field_manager="longhorn-bi")
    assert second["spec"]["minNumberOfCopies"] == 2
    assert second["spec"]["sourceType"] == "download"
    assert second["metadata"]["generation"] == 2
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    with pytest.raises(ApiException) as no_manager:
        apply(backing_image("bi-a"))
    assert no_manager.value.status == 422
    assert "fieldManager: Required value" in status_of(no_manager.value)["message"]
    assert fake_kube.requests[-1][2] == {}  # no fieldManager went on the wire


def test_replace_conflicts_on_a_stale_resource_version(crs) -> None:
    created = crs.create_namespaced_custom_object(
        GROUP, VERSION, NS, "backingimages", backing_image("bi-r")
    )
    fresh = json.loads(json.dumps(created))
    fresh["spec"]["minNumberOfCopies"] = 3
    replaced = crs.replace_namespaced_custom_object(
        GROUP, VERSION, NS, "backingimages", "bi-r", fresh
    )
    assert replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as stale:
        crs.replace_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", "bi-r", created)
    body = status_of(stale.value)
    assert (stale.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"].startswith("Operation cannot be fulfilled on backingimages.longhorn.io")


def test_patch_types_and_the_status_subresource(crs, fake_kube) -> None:
    crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", backing_image("bi-p"))
    merged = crs.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "backingimages", "bi-p",
        {"spec": {"minNumberOfCopies": 2}, "status": {"ownerID": "dropped"}},
    )  # fmt: skip
    assert merged["spec"]["minNumberOfCopies"] == 2 and "status" not in merged
    ops = [{"op": "replace", "path": "/spec/minNumberOfCopies", "value": 4}]
    patched = crs.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "backingimages",
        "bi-p",
        ops,
        _content_type="application/json-patch+json",
    )
    assert patched["spec"]["minNumberOfCopies"] == 4
    with pytest.raises(ApiException) as strategic:
        crs.patch_namespaced_custom_object(
            GROUP, VERSION, NS, "backingimages", "bi-p", {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )  # fmt: skip
    assert (strategic.value.status, status_of(strategic.value)["reason"]) == (
        415,
        "UnsupportedMediaType",
    )
    with_status = crs.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, "backingimages", "bi-p",
        {"status": {"ownerID": "node-1"}, "spec": {"minNumberOfCopies": 9}},
    )  # fmt: skip
    assert with_status["status"] == {"ownerID": "node-1"}
    assert with_status["spec"]["minNumberOfCopies"] == 4  # /status changes only status
    assert with_status["metadata"]["generation"] == patched["metadata"]["generation"]
    assert fake_kube.get("backingimages", NS, "bi-p")["status"] == {"ownerID": "node-1"}


def test_delete_dry_run_and_finalizers(crs, fake_kube) -> None:
    dry = crs.create_namespaced_custom_object(
        GROUP, VERSION, NS, "backingimages", backing_image("bi-d"), dry_run="All"
    )
    assert dry["metadata"]["name"] == "bi-d" and fake_kube.get("backingimages", NS, "bi-d") is None
    crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", backing_image("bi-d"))
    gone = crs.delete_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", "bi-d")
    assert gone["metadata"]["name"] == "bi-d" and fake_kube.get("backingimages", NS, "bi-d") is None
    held = backing_image("bi-f")
    held["metadata"]["finalizers"] = ["longhorn.io"]
    crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", held)
    marked = crs.delete_namespaced_custom_object(GROUP, VERSION, NS, "backingimages", "bi-f")
    assert marked["metadata"]["deletionTimestamp"]
    assert fake_kube.get("backingimages", NS, "bi-f") is not None
    crs.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "backingimages", "bi-f", {"metadata": {"finalizers": None}}
    )
    assert fake_kube.get("backingimages", NS, "bi-f") is None


def test_watch_streams_history_and_live_status_updates(crs, fake_kube) -> None:
    start = crs.list_namespaced_custom_object(GROUP, VERSION, NS, "backingimages")
    fake_kube.put(backing_image("bi-w"))
    fake_kube.put(backing_image("other"))

    def controller() -> None:
        fake_kube.wait_for_watchers(1)
        fake_kube.update_status("backingimages", NS, "bi-w", {"diskFileStatusMap": {"d": {}}})

    thread = threading.Thread(target=controller)
    thread.start()
    w = watch.Watch()
    seen = []
    for event in w.stream(
        crs.list_namespaced_custom_object, GROUP, VERSION, NS, "backingimages",
        resource_version=start["metadata"]["resourceVersion"],
        field_selector="metadata.name=bi-w", timeout_seconds=60,
    ):  # fmt: skip
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if event["type"] == "MODIFIED":
            assert event["object"]["status"] == {"diskFileStatusMap": {"d": {}}}
            w.stop()
    thread.join()
    assert seen == [("ADDED", "bi-w"), ("MODIFIED", "bi-w")]
    watches = [q for m, _, q in fake_kube.requests if q.get("watch") == "true"]
    assert watches[0]["resourceVersion"] == start["metadata"]["resourceVersion"]


def test_watch_from_a_compacted_version_fails_with_410(crs, fake_kube) -> None:
    old = crs.list_namespaced_custom_object(GROUP, VERSION, NS, "backingimages")
    fake_kube.put(backing_image("bi-c"))
    fake_kube.compact()
    stream = watch.Watch().stream(
        crs.list_namespaced_custom_object, GROUP, VERSION, NS, "backingimages",
        resource_version=old["metadata"]["resourceVersion"],
    )  # fmt: skip
    with pytest.raises(ApiException) as expired:
        next(stream)
    assert expired.value.status == 410 and "Expired: too old resource version" in str(expired.value)


def test_dropped_watch_breaks_the_client_stream(crs, fake_kube) -> None:
    fake_kube.put(backing_image("bi-x"))
    threading.Thread(
        target=lambda: (fake_kube.wait_for_watchers(1), fake_kube.drop_watches())
    ).start()
    events = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for event in watch.Watch().stream(
            crs.list_namespaced_custom_object, GROUP, VERSION, NS, "backingimages"
        ):
            events.append(event["type"])
    assert events == ["ADDED"]  # resourceVersion unset: the current state comes first


def test_injected_failures_and_rbac_forbidden(crs, fake_kube) -> None:
    fake_kube.forbid("create", "backupbackingimages")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BackupBackingImage",
        "metadata": {"name": "x"},
        "spec": {"userCreated": True},
    }
    with pytest.raises(ApiException) as denied:
        crs.create_namespaced_custom_object(GROUP, VERSION, NS, "backupbackingimages", body)
    assert status_of(denied.value)["message"] == (
        'backupbackingimages.longhorn.io is forbidden: User "system:serviceaccount:default:test" '
        'cannot create resource "backupbackingimages" in API group "longhorn.io" in the namespace '
        '"longhorn-system"'
    )
    fake_kube.forbid("patch", "backupbackingimages")
    with pytest.raises(ApiException) as named:
        crs.patch_namespaced_custom_object(GROUP, VERSION, NS, "backupbackingimages", "x", {})
    assert status_of(named.value)["message"].startswith(
        'backupbackingimages.longhorn.io "x" is forbidden: User'
    )
    fake_kube.fail("get", "settings", 503, message="etcd leader changed")
    with pytest.raises(ApiException) as flaky:
        crs.get_namespaced_custom_object(GROUP, VERSION, NS, "settings", "s")
    assert (flaky.value.status, status_of(flaky.value)["reason"]) == (503, "ServiceUnavailable")
    with pytest.raises(ApiException) as after:  # times=1: the next call reaches the store
        crs.get_namespaced_custom_object(GROUP, VERSION, NS, "settings", "s")
    assert after.value.status == 404


def test_bearer_token_is_required_when_set(tmp_path: Path) -> None:
    with FakeKubeServer(token="s3cret") as server:
        for token, expected in ((None, 401), ("s3cret", 200)):
            kubeconfig = write_kubeconfig(tmp_path / f"k-{token}", server.url, token=token)
            with config.new_client_from_config(config_file=str(kubeconfig)) as api:
                core = client.CoreV1Api(api)
                try:
                    core.list_namespaced_secret(NS)
                    code = 200
                except ApiException as exc:
                    code = exc.status
                    assert status_of(exc)["reason"] == "Unauthorized"
            assert code == expected
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            core = client.CoreV1Api(api)
            meta = client.V1ObjectMeta(name="s3", namespace=NS)
            core.create_namespaced_secret(
                NS, client.V1Secret(metadata=meta, string_data={"k": "v"})
            )
            read = core.read_namespaced_secret("s3", NS)
            assert (read.data, read.string_data, read.type) == ({"k": "dg=="}, None, "Opaque")
            gone: Any = core.delete_namespaced_secret("s3", NS)  # built-ins answer with a Status
            assert (gone["status"], gone["details"]["name"]) == ("Success", "s3")


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1)).add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_with_the_ca_in_the_kubeconfig(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    with FakeKubeServer(crd_file("1.12"), tls=(cert_file, key_file)) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", srv.url, ca_file=cert_file)
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            listed: Any = client.CustomObjectsApi(api).list_cluster_custom_object(
                GROUP, VERSION, "settings"
            )
            assert listed["kind"] == "SettingList"
        untrusted = write_kubeconfig(tmp_path / "untrusted", srv.url)
        with (
            config.new_client_from_config(config_file=str(untrusted)) as api,
            pytest.raises(urllib3.exceptions.MaxRetryError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.VersionApi(api).get_code(_request_timeout=10)


def test_v16_crds_serve_both_versions() -> None:
    with FakeKubeServer(crds=crd_file("1.6")) as server:
        server.put(backing_image("old"))
        url = f"{server.url}/apis/{GROUP}/v1beta1/namespaces/{NS}/backingimages/old"
        http = urllib3.PoolManager()
        assert http.request("GET", url).json()["apiVersion"] == "longhorn.io/v1beta1"
        groups = http.request("GET", f"{server.url}/apis/{GROUP}").json()
        assert groups["preferredVersion"]["version"] == "v1beta2"
        assert [v["version"] for v in groups["versions"]] == ["v1beta2", "v1beta1"]


def test_raw_watch_is_chunked_ndjson_ending_with_a_bookmark(fake_kube) -> None:
    fake_kube.put(backing_image("bi-raw"))
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/backingimages"
    query = "watch=1&resourceVersion=0&timeoutSeconds=1&allowWatchBookmarks=true"
    port = int(fake_kube.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET {path}?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        raw = b""
        while not raw.endswith(b"\r\n0\r\n\r\n"):
            data = sock.recv(65536)
            assert data, f"connection closed before the last chunk: {raw!r}"
            raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and head.startswith(b"HTTP/1.1 200")
    events = []
    while body:
        size, _, body = body.partition(b"\r\n")
        chunk, body = body[: int(size, 16)], body[int(size, 16) + 2 :]
        if chunk:  # one event per chunk, each a JSON line
            assert chunk.endswith(b"\n") and chunk.count(b"\n") == 1
            events.append(json.loads(chunk))
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    bookmark = events[1]["object"]
    assert bookmark["kind"] == "BackingImage"
    assert bookmark["metadata"]["resourceVersion"] == str(fake_kube.resource_version)


def test_aiohttp_list_then_watch_sees_the_drop(fake_kube) -> None:
    import aiohttp

    base = f"{fake_kube.url}/apis/{GROUP}/{VERSION}/backingimages"

    async def main() -> list[str]:
        seen: list[str] = []
        async with aiohttp.ClientSession() as session:
            async with session.get(base) as resp:
                rv = (await resp.json())["metadata"]["resourceVersion"]
            fake_kube.put(backing_image("bi-aio"))
            params = {"watch": "true", "resourceVersion": rv}
            async with session.get(base, params=params) as resp:
                await asyncio.to_thread(fake_kube.wait_for_watchers, 1)
                with pytest.raises(aiohttp.ClientPayloadError):
                    async for line in resp.content:
                        seen.append(json.loads(line)["type"])
                        fake_kube.drop_watches()
        return seen

    assert asyncio.run(main()) == ["ADDED"]


def test_stop_cuts_an_open_watch(fake_kube) -> None:
    url = f"{fake_kube.url}/apis/{GROUP}/{VERSION}/backingimages?watch=true&resourceVersion=0"
    version_url = f"{fake_kube.url}/version"
    threading.Thread(target=lambda: (fake_kube.wait_for_watchers(1), fake_kube.stop())).start()
    resp = urllib3.PoolManager().request("GET", url, preload_content=False)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(resp.stream())
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        urllib3.PoolManager(retries=0).request("GET", version_url)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_discovery_and_objects_through_the_kubeconfig(
    fake_kube, fake_kubeconfig: Path
) -> None:
    def kubectl(*args: str) -> str:
        done = subprocess.run(
            ["kubectl", "--kubeconfig", str(fake_kubeconfig), *args],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    names = [
        r["name"]
        for r in json.loads(kubectl("get", "--raw", f"/apis/{GROUP}/{VERSION}"))["resources"]
    ]
    assert "backupbackingimages" in names and "settings/status" in names
    fake_kube.put(backing_image("bi-k"))
    assert kubectl("get", "lhbi", "bi-k", "-o", "jsonpath={.spec.sourceType}") == "download"
    assert ("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/backingimages/bi-k") in [
        (m, p) for m, p, _ in fake_kube.requests
    ]
