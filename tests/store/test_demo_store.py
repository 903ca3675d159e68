"""The backupstore part of `make demo`."""

from __future__ import annotations

from longhorn_bi.demo_store import DEMO_IMAGE_NAME, run_store_demo


def test_store_demo_backs_up_verifies_and_restores(tmp_path, capsys) -> None:
    url = run_store_demo(tmp_path / "demo-work")
    assert url == f"vfs://{tmp_path / 'demo-work' / 'backupstore'}?backingImage={DEMO_IMAGE_NAME}"
    image = tmp_path / "demo-work" / f"{DEMO_IMAGE_NAME}.raw"
    restored = tmp_path / "demo-work" / f"{DEMO_IMAGE_NAME}.restored.raw"
    assert restored.read_bytes() == image.read_bytes()
    first = capsys.readouterr().out
    assert "backed up to" in first and "verified" in first
    assert run_store_demo(tmp_path / "demo-work") == url  # a rerun finds the complete backup
    assert "backup exists already" in capsys.readouterr().out
