"""nfs:// driver: the export mounted on a local folder, then used as a vfs store.

As root, the export is mounted into a temporary folder with Longhorn's default options
(longhorn/backupstore nfs/nfs.go: nfs4, nfsvers 4.2 then 4.1 then 4.0, actimeo=1, soft,
timeo=300, retry=2; `?nfsOptions=a,b` replaces them) and unmounted on close. Otherwise
`--mount-point DIR` names a folder where the export is already mounted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from longhorn_bi.engine.backup_url import BackupTarget
from longhorn_bi.engine.errors import BackupstoreError, UnsupportedFeature
from longhorn_bi.engine.store.drivers.mounted import (
    MountedStore,
    existing_mount_point,
    split_mount_options,
)

MINOR_VERSIONS = ("4.2", "4.1", "4.0")
DEFAULT_OPTIONS = ("actimeo=1", "soft", "timeo=300", "retry=2")
MOUNT_TIMEOUT = 30.0


def mount_option_sets(target: BackupTarget) -> list[list[str]]:
    """The option lists to try, in order, as Longhorn tries them."""
    override = split_mount_options(target, "nfsOptions")
    if override:
        return [override]
    return [[f"nfsvers={version}", *DEFAULT_OPTIONS] for version in MINOR_VERSIONS]


def mount_source(target: BackupTarget) -> str:
    """`server:/export` as Longhorn mounts it (u.Host + u.Path): `[fd00::1]:/export`."""
    return f"{target.host}:{target.path}"


def open_nfs_store(
    target: BackupTarget,
    *,
    mount_point: str | None = None,
    as_root: bool | None = None,
    mount_command: Sequence[str] = ("mount",),
    umount_command: Sequence[str] = ("umount",),
) -> MountedStore:
    source = mount_source(target)
    if mount_point:
        root = existing_mount_point(mount_point, how_to_mount=f"mount -t nfs4 {source} DIR")
        return MountedStore(target.url, root)
    if as_root is None:
        as_root = os.geteuid() == 0
    if not as_root:
        raise UnsupportedFeature(
            f"mounting {source} needs root",
            hint=f"mount it yourself (mount -t nfs4 {source} DIR) and pass --mount-point DIR",
        )
    if shutil.which(mount_command[0]) is None:
        raise UnsupportedFeature(f"no {mount_command[0]!r} command to mount {source}")
    root = Path(tempfile.mkdtemp(prefix="longhorn-bi-nfs-"))
    failures = []
    for options in mount_option_sets(target):
        argv = [*mount_command, "-t", "nfs4", "-o", ",".join(options), source, str(root)]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=MOUNT_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            failures.append(f"{','.join(options)}: timed out after {MOUNT_TIMEOUT:.0f} s")
            continue
        if done.returncode == 0:
            return MountedStore(target.url, root, umount=umount_command)
        reason = (done.stderr or done.stdout).strip().splitlines()
        failures.append(f"{options[0]}: {reason[-1] if reason else f'exit {done.returncode}'}")
    with contextlib.suppress(OSError):
        root.rmdir()
    raise BackupstoreError(
        f"cannot mount NFS export {source}: " + "; ".join(failures),
        hint="check the server and export (and that nfs-common is installed), or mount it "
        "yourself and pass --mount-point DIR",
    )
