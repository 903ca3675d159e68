"""The backupstore part of `make demo`, through the real command line."""

from __future__ import annotations

import hashlib

from longhorn_bi.demo import PARROT_MANIFESTS, store_manifests
from longhorn_bi.demo_store import DEMO_IMAGE_NAME, run_store_demo
from tests.support import run_cli


def test_store_demo_backs_up_verifies_and_restores(tmp_path, capsys) -> None:
    work = tmp_path / "demo-work"
    url, checksum = run_store_demo(work)
    assert url == f"vfs://{work / 'backupstore'}?backingImage={DEMO_IMAGE_NAME}"
    image = (work / f"{DEMO_IMAGE_NAME}.raw").read_bytes()
    assert checksum == hashlib.sha512(image).hexdigest()
    assert (work / f"{DEMO_IMAGE_NAME}.restored.raw").read_bytes() == image
    shown = capsys.readouterr().out
    assert "$ kubectl longhorn-bi store backup" in shown and f"OK: {DEMO_IMAGE_NAME}" in shown
    assert run_store_demo(work) == (url, checksum)  # a rerun finds the complete backup


def test_the_manifests_the_demo_prints_pass_the_rules_of_their_version(tmp_path) -> None:
    url, checksum = run_store_demo(tmp_path / "demo-work")
    for title, args in [*PARROT_MANIFESTS, *store_manifests(url, checksum)]:
        printed = run_cli(*args)
        assert printed.returncode == 0 and printed.stderr == "", (title, printed.stderr)
        version = args[args.index("--longhorn-version") + 1]
        manifest = tmp_path / "printed.yaml"
        manifest.write_text(printed.stdout)
        checked = run_cli("validate", str(manifest), "--strict", "--longhorn-version", version)
        assert checked.returncode == 0, (title, checked.stdout)
        assert "1 document checked, 0 skipped: 0 errors, 0 warnings" in checked.stdout
