"""`verify --in-cluster` on a real cluster: an Indexed Job whose pods, with their service
account's token and CA, read an in-cluster S3 (MinIO) with the target's credential Secret.

    docker build -t longhorn-bi:e2e . && kind load docker-image longhorn-bi:e2e
    LONGHORN_BI_E2E_KUBECONFIG=~/.kube/config LONGHORN_BI_E2E_IMAGE=longhorn-bi:e2e make e2e

The cluster pulls MinIO (LONGHORN_BI_E2E_MINIO_IMAGE to use another); this machine writes
the backups through `kubectl port-forward`, the pods read them at the Service's DNS name.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.catalog import require_cfg
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.layout import block_key
from tests.e2e.conftest import RealCluster
from tests.plugin_cluster.scrub_support import make_image

pytestmark = pytest.mark.e2e

IMAGE_VAR = "LONGHORN_BI_E2E_IMAGE"
MINIO_VAR = "LONGHORN_BI_E2E_MINIO_IMAGE"
MINIO_IMAGE = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
BUCKET, ACCESS, SECRET = "e2e-verify", "e2e-access", "e2e-secret-key"
TARGET = f"s3://{BUCKET}@us-east-1/"
JOB_TIMEOUT = 600  # image pulls and pod starts; the plugin follows the Job until then


@pytest.fixture(scope="module")
def image() -> str:
    value = os.environ.get(IMAGE_VAR)
    if not value:
        pytest.skip(f"no plugin image the cluster can run: set {IMAGE_VAR} (see this module)")
    return value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _minio_objects(namespace: str) -> list[dict[str, object]]:
    labels = {"app.kubernetes.io/name": "e2e-minio"}
    env = [{"name": "MINIO_ROOT_USER", "value": ACCESS}]
    env.append({"name": "MINIO_ROOT_PASSWORD", "value": SECRET})
    container = {
        "name": "minio",
        "image": os.environ.get(MINIO_VAR, MINIO_IMAGE),
        "args": ["server", "/data"],
        "env": env,
        "ports": [{"containerPort": 9000}],
        "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": 9000}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "minio", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [container],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "minio", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 9000, "targetPort": 9000}]},
        },
    ]


@pytest.fixture(scope="module")
def minio(real_cluster: RealCluster) -> Iterator[str]:
    """MinIO in the test namespace with bucket BUCKET; its endpoint on this machine."""
    ns = real_cluster.namespace
    manifests = yaml.safe_dump_all(_minio_objects(ns))
    real_cluster.kubectl("apply", "--server-side", "-f", "-", stdin=manifests)
    real_cluster.kubectl("rollout", "status", "deployment/minio", "-n", ns, "--timeout=100s")
    port = _free_port()
    forward = subprocess.Popen(
        ["kubectl", "port-forward", "-n", ns, "service/minio", f"{port}:9000"],
        env=real_cluster.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "kubectl port-forward did not listen"
                time.sleep(0.2)
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET,
        ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        forward.terminate()
        forward.wait(30)


def _backup_objects(namespace: str, names: list[str]) -> list[dict[str, object]]:
    cluster_endpoint = f"http://minio.{namespace}.svc:9000"
    secret = {"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
    secret["AWS_ENDPOINTS"] = cluster_endpoint
    objects: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "minio-creds", "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()},
        },
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackupTarget",
            "metadata": {"name": "minio", "namespace": namespace},
            "spec": {
                "backupTargetURL": TARGET,
                "credentialSecret": "minio-creds",
                "pollInterval": "300s",
            },
        },
    ]
    for name in names:
        spec = {"userCreated": True, "backingImage": name, "backupTargetName": "minio"}
        objects.append(
            {
                "apiVersion": "longhorn.io/v1beta2",
                "kind": "BackupBackingImage",
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            }
        )
    return objects


def test_in_cluster_verify_with_the_pods_service_account(
    real_cluster: RealCluster,
    minio: str,
    image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = real_cluster.namespace
    for key, value in (
        ("AWS_ACCESS_KEY_ID", ACCESS),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_ENDPOINTS", minio),
    ):
        monkeypatch.setenv(key, value)  # this machine's engine writes through the forward
    names = ["e2e-sound", "e2e-rotten"]
    made = {}
    for seed, name in enumerate(names):
        raw = tmp_path / f"{name}.raw"
        make_image(raw, blocks=3, seed=seed)
        made[name] = backup_image(raw, TARGET, name)
    manifests = yaml.safe_dump_all(_backup_objects(ns, names))
    real_cluster.kubectl("apply", "--server-side", "-f", "-", stdin=manifests)
    real_cluster.set_status("backuptargets.longhorn.io", "minio", '{"available": true}')
    for name, result in made.items():
        status = {
            "state": "Completed",
            "progress": 100,
            "backingImage": name,
            "url": result.url,
            "checksum": result.checksum,
            "size": result.size,
        }
        real_cluster.set_status("backupbackingimages.longhorn.io", name, json.dumps(status))
    store = open_store(TARGET)
    try:
        ref = require_cfg(store, "e2e-rotten").blocks[0]
        store.write(block_key(ref.checksum), b"rot")
    finally:
        store.close()

    job_args = ["--image", image, "-n", ns]
    run = subprocess.run(
        ["kubectl", "longhorn-bi", "verify", "--all", "--in-cluster", "--shards", "2", *job_args],
        capture_output=True,
        text=True,
        env=real_cluster.env,
        timeout=JOB_TIMEOUT + 60,
        check=False,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED  e2e-rotten" in run.stdout and f"offset {ref.offset}" in run.stdout
    assert "2 backup(s): 1 failed, 1 ok" in run.stderr
    path = "jsonpath={.metadata.annotations}"
    shown = real_cluster.kubectl(
        "get", "backupbackingimages.longhorn.io", "e2e-sound", "-n", ns, "-o", path
    )
    notes = json.loads(shown.stdout)
    assert notes["longhorn-bi.io/verify-result"] == "ok"
    job = json.loads(real_cluster.kubectl("get", "jobs", "-n", ns, "-o", "json").stdout)
    (spec,) = [item["spec"] for item in job["items"]]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 2
    # the plan: one list per index, owned by the Job so that its TTL removes both
    label = "app.kubernetes.io/name=longhorn-bi-verify"
    shown = real_cluster.kubectl("get", "configmaps", "-n", ns, "-l", label, "-o", "json")
    (plan,) = json.loads(shown.stdout)["items"]
    assert sorted(plan["data"]) == ["0", "1"]
    (owner,) = plan["metadata"]["ownerReferences"]
    assert owner["kind"] == "Job" and owner["uid"] == job["items"][0]["metadata"]["uid"]
