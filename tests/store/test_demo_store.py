"""The backupstore part of `make demo`, through the real command line."""

from __future__ import annotations

import hashlib

from longhorn_bi.demo_store import DEMO_IMAGE_NAME, run_store_demo


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
