"""vfs:// driver: a backupstore in a local directory (also the root of a mounted NFS export)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from longhorn_bi.engine.errors import BackupstoreError, NotFound
from longhorn_bi.engine.store_driver import check_key

TMP_PREFIX = ".tmp-"


class VfsStore:
    """Objects are files under `root`; writes go to a temporary file, fsync, then rename."""

    def __init__(self, url: str, root: str | Path, *, durable: bool = True) -> None:
        self._url = url
        self.root = Path(root)
        self.durable = durable
        if self.root.exists() and not self.root.is_dir():
            raise BackupstoreError(f"backup target {url} is not a directory")

    @property
    def url(self) -> str:
        return self._url

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{key} does not exist in {self._url}") from None
        except OSError as exc:
            raise BackupstoreError(f"cannot read {key} in {self._url}: {exc.strerror}") from None

    def write(self, key: str, data: bytes | bytearray | memoryview) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise BackupstoreError(f"cannot write {key} in {self._url}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if self.durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise BackupstoreError(
                    f"cannot write {key} in {self._url}: {exc.strerror}"
                ) from None
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackupstoreError(f"cannot delete {key} in {self._url}: {exc.strerror}") from None
        # Drop folders left empty (an image folder after `rm`), never the store root.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list(self, prefix: str) -> list[str]:
        try:
            return sorted(
                entry.name
                for entry in os.scandir(self._path(prefix.rstrip("/")))
                if not entry.name.startswith(TMP_PREFIX)
            )
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise BackupstoreError(f"cannot list {prefix} in {self._url}: {exc.strerror}") from None

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"{key} does not exist in {self._url}") from None

    def mtime(self, key: str) -> float:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            raise NotFound(f"{key} does not exist in {self._url}") from None

    def close(self) -> None:
        return None
