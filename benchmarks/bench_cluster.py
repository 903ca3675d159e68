"""Cluster mode: `list` against `kubectl get` on the same API server, and TAB completion.

The API server is the tests' fake one on 127.0.0.1 (no kube-apiserver runs here), holding
N BackupBackingImages; both clients read the same list over the same HTTP, so the figures
compare the clients. Completion (`kubectl_complete-longhorn_bi ""`, what kubectl runs on
TAB) is set against `python -c pass`.

Run: python -m benchmarks.bench_cluster
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import BIN, PLUGIN, median_ms, pin_to_one_core, result, wall_times
from tests.fakekube import FakeKubeServer, crd_file, volume_crd_file, write_kubeconfig

OBJECTS = 1000
RUNS = 7
NS = "longhorn-system"


def backup(i: int) -> dict[str, object]:
    name = f"image-{i:04d}"
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackupBackingImage",
        "metadata": {"name": f"{name}-backup", "namespace": NS},
        "spec": {"userCreated": True, "backingImage": name, "backupTargetName": "default"},
        "status": {
            "state": "Completed",
            "progress": 100,
            "size": 2 * 1024**3,
            "url": f"s3://backups@us-east-1/?backingImage={name}",
            "checksum": "ab" * 64,
        },
    }


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as scratch,
        FakeKubeServer(crds=(crd_file("1.12"), volume_crd_file("1.12"))) as server,
    ):
        for i in range(OBJECTS):
            server.put(backup(i))
        kubeconfig = str(write_kubeconfig(Path(scratch) / "kubeconfig", server.url))
        ours = pin_to_one_core([PLUGIN, "list", "--kubeconfig", kubeconfig])
        check = subprocess.run(ours, capture_output=True, text=True, check=False)
        assert len(check.stdout.splitlines()) == OBJECTS + 1, check.stderr
        ours_times = wall_times(ours, RUNS)
        result(
            "cluster list kubectl-longhorn_bi",
            objects=OBJECTS,
            runs=RUNS,
            median_ms=median_ms(ours_times),
        )
        if shutil.which("kubectl"):
            peer = pin_to_one_core(
                [
                    "kubectl",
                    "get",
                    "backupbackingimages.longhorn.io",
                    "-n",
                    NS,
                    "--kubeconfig",
                    kubeconfig,
                ]
            )
            check = subprocess.run(peer, capture_output=True, text=True, check=False)
            if check.returncode == 0 and len(check.stdout.splitlines()) == OBJECTS + 1:
                result(
                    "cluster list kubectl get (peer)",
                    objects=OBJECTS,
                    runs=RUNS,
                    median_ms=median_ms(wall_times(peer, RUNS)),
                )
            else:
                result("cluster list kubectl get (peer)", skipped=repr(check.stderr.strip()[:80]))
    baseline = wall_times(pin_to_one_core([sys.executable, "-c", "pass"]), RUNS * 3)
    complete = wall_times(
        pin_to_one_core([str(BIN / "kubectl_complete-longhorn_bi"), ""]), RUNS * 3
    )
    result("completion python -c pass", runs=RUNS * 3, median_ms=median_ms(baseline))
    result(
        "completion kubectl_complete-longhorn_bi ''", runs=RUNS * 3, median_ms=median_ms(complete)
    )


if __name__ == "__main__":
    main()
