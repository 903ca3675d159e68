"""The nfs:// driver: an already mounted export, the mount attempt, and its errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from longhorn_bi.engine.backup_url import parse_target
from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, UnsupportedFeature
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.drivers.nfs import open_nfs_store
from longhorn_bi.engine.store.restore import restore_backup
from tests.store.reference_store import BLOCK, make_sparse_file

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")


def test_backup_and_restore_through_a_mounted_export(tmp_path, fast_locks) -> None:
    export = tmp_path / "mnt"
    export.mkdir()
    image = tmp_path / "image.raw"
    content = make_sparse_file(image, 2 * BLOCK, {0: os.urandom(BLOCK)})
    options = {"mount_point": str(export)}
    target = "nfs://nfs.example.com:/exports/longhorn"
    result = backup_image(image, target, "parrot", store_options=options, lock_timings=fast_locks)
    assert result.url == f"{target}?backingImage=parrot"
    assert (export / "backupstore/backing-images/backing-images/parrot/backing-image.cfg").exists()
    out = tmp_path / "out.raw"
    restore_backup(result.url, out, store_options=options, lock_timings=fast_locks)
    assert out.read_bytes() == content
    done = subprocess.run(
        [EXE, "store", "ls", target, "--mount-point", str(export)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "parrot" in done.stdout


def test_mount_point_must_be_a_folder(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="--mount-point"):
        open_nfs_store(parse_target("nfs://server:/export"), mount_point=str(tmp_path / "nope"))


def test_without_root_the_error_says_to_mount_it_yourself() -> None:
    with pytest.raises(UnsupportedFeature, match="needs root") as caught:
        open_nfs_store(parse_target("nfs://server:/export"), as_root=False)
    assert "--mount-point" in (caught.value.hint or "")


def _fake_mount(tmp_path: Path, exit_code: int) -> tuple[Path, Path]:
    log = tmp_path / "mount.log"
    script = tmp_path / "fake-mount"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        'echo "mount.nfs: Connection refused" >&2\n'
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def test_failed_mount_tries_longhorns_options_and_explains(tmp_path) -> None:
    script, log = _fake_mount(tmp_path, 32)
    with pytest.raises(BackupstoreError, match="cannot mount NFS export server:/export") as caught:
        open_nfs_store(
            parse_target("nfs://server:/export"), as_root=True, mount_command=[str(script)]
        )
    assert "Connection refused" in caught.value.message
    calls = log.read_text().splitlines()
    assert [c.split()[3].split(",")[0] for c in calls] == [
        "nfsvers=4.2",
        "nfsvers=4.1",
        "nfsvers=4.0",
    ]
    assert all(" -t nfs4 " in f" {c} " and "actimeo=1,soft,timeo=300,retry=2" in c for c in calls)
    mount_dir = calls[0].split()[-1]
    assert not Path(mount_dir).exists()  # the temporary mount point is removed


def test_nfs_options_in_the_url_replace_the_defaults(tmp_path) -> None:
    script, log = _fake_mount(tmp_path, 0)
    umount_log = tmp_path / "umount.log"
    store = open_nfs_store(
        parse_target("nfs://server:/export?nfsOptions=nfsvers=3,hard"),
        as_root=True,
        mount_command=[str(script)],
        umount_command=["sh", "-c", f'echo "$0" >> "{umount_log}"'],
    )
    root = store.root
    store.close()
    assert log.read_text().split()[:3] == ["-t", "nfs4", "-o"]
    assert log.read_text().split()[3] == "nfsvers=3,hard"
    assert umount_log.read_text().strip() == str(root)
    assert not Path(root).exists()
