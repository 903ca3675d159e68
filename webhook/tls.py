"""The serving TLS context, reloaded in place when the certificate or key files change.

Kubernetes updates a mounted Secret by swapping a symlink, and cert-manager renews a
certificate weeks before it expires: polling the files' identity every few seconds and calling
`load_cert_chain` on the live context serves the new pair from the next handshake on, with no
restart and no effect on connections already open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from longhorn_bi.engine.errors import InvalidInput

_FileId = tuple[int, int, int, int]  # device, inode, size, mtime in ns


def _file_id(path: Path) -> _FileId | None:
    try:
        st = path.stat()  # follows the ..data symlink of a Secret volume
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def new_server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2 with forward secrecy and AEAD only (TLS 1.3's suites are all AEAD).
    context.set_ciphers(TLS12_CIPHERS)
    return context


@dataclass
class ReloadResult:
    changed: bool
    error: str = ""


class ReloadingTLS:
    """An SSLContext for a cert/key pair, and the poller that keeps it current."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.context = new_server_context()
        self._loaded: tuple[_FileId | None, _FileId | None] = (None, None)
        try:
            self._check_pair()
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInput(
                f"--cert-file/--key-file: cannot load {cert_file} and {key_file}: {exc}",
                hint="give a PEM certificate and its PEM private key "
                "(longhorn-bi-webhook certs makes a pair)",
            ) from exc
        self.context.load_cert_chain(self.cert_file, self.key_file)
        self._loaded = (_file_id(cert_file), _file_id(key_file))

    def _check_pair(self) -> None:
        # A half-written pair must never reach the live context: load_cert_chain would set
        # the new certificate, fail on the old key, and leave a context that fails every
        # handshake. A scratch context proves the pair first.
        new_server_context().load_cert_chain(self.cert_file, self.key_file)

    def reload_if_changed(self) -> ReloadResult:
        """Load the pair when either file changed; keep serving the old one if it is bad."""
        ids = (_file_id(self.cert_file), _file_id(self.key_file))
        if ids == self._loaded or None in ids:
            return ReloadResult(False)
        try:
            self._check_pair()
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            # Probably mid-rotation (certificate written, key not yet): retry next poll.
            return ReloadResult(False, str(exc))
        self._loaded = ids
        return ReloadResult(True)

    async def watch(
        self,
        interval: float,
        logger: logging.Logger,
        on_result: Callable[[ReloadResult], None] | None = None,
    ) -> None:
        """Poll forever. Runs on the event loop: handshakes use the context there too, so
        loading it from another thread could race with them; a load takes about a
        millisecond."""
        last_error = ""
        while True:
            await asyncio.sleep(interval)
            result = self.reload_if_changed()
            if result.changed:
                logger.info(
                    "serving certificate reloaded", extra={"cert_file": str(self.cert_file)}
                )
            new_error = bool(result.error) and result.error != last_error
            if new_error:
                logger.warning(
                    "certificate files changed but cannot be loaded yet; still serving the old pair",
                    extra={"error": result.error},
                )
            last_error = result.error
            if on_result is not None and (result.changed or new_error):
                on_result(result)


async def cancel_quietly(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
