"""What the file-share drivers (nfs://, cifs://) share: a store on a mounted folder.

Longhorn reaches both kinds of share the same way (longhorn/backupstore nfs/nfs.go and
cifs/cifs.go, the same from bd231cf, pinned by longhorn-manager v1.6.0, to e5f4ddc, pinned by
v1.12.1): it mounts the
share on a local folder and then works on files there (fsops). Here the user may name a
folder where the share is already mounted (`--mount-point`), and the URL may carry mount
options (`?nfsOptions=` / `?cifsOptions=`) read as Longhorn's util.SplitMountOptions reads
them.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

from longhorn_bi.engine.backup_url import BackupTarget
from longhorn_bi.engine.errors import InvalidInput
from longhorn_bi.engine.store.drivers.vfs import VfsStore

UNMOUNT_TIMEOUT = 30.0


def split_mount_options(target: BackupTarget, parameter: str) -> list[str] | None:
    """The mount options of `?<parameter>=` (None when absent), as util.SplitMountOptions
    splits them: several parameters are taken one option each, a single one is split at
    commas (`?cifsOptions=soft,port=4455` and `?cifsOptions=soft&cifsOptions=port=4455`)."""
    values = [value for key, value in target.query if key == parameter]
    if not values:
        return None
    options = values if len(values) > 1 else values[0].split(",")
    return [option.strip() for option in options if option.strip()]


def existing_mount_point(mount_point: str, *, how_to_mount: str) -> Path:
    """The folder the user names as the mounted share, or InvalidInput saying how to mount."""
    root = Path(mount_point)
    if not root.is_dir():
        raise InvalidInput(
            f"--mount-point {mount_point!r} is not a folder",
            hint=f"mount the share first: {how_to_mount}",
        )
    return root


class MountedStore(VfsStore):
    """A vfs store on a mounted network share; unmounts on close what it mounted itself."""

    def __init__(self, url: str, root: Path, *, umount: Sequence[str] | None = None) -> None:
        super().__init__(url, root)
        self._umount = list(umount) if umount else None

    @property
    def local_listing(self) -> bool:
        return False  # other hosts write here too, and the client caches attributes

    def close(self) -> None:
        if self._umount is not None:
            argv, self._umount = self._umount, None
            subprocess.run(
                [*argv, str(self.root)], capture_output=True, timeout=UNMOUNT_TIMEOUT, check=False
            )
            with contextlib.suppress(OSError):
                self.root.rmdir()
