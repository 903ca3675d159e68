"""azblob:// driver: Azure Blob Storage through azure-storage-blob (imported when used).

The URL and the variables are read as longhorn/backupstore reads them (azblob/azblob.go and
azblob/azblob_service.go; unchanged in this from commit aa42d35 of 2023-05, which Longhorn
1.5.0 shipped, to master ab5179e of 2026-08; backupstore has no release tags):

- `azblob://container@endpoint-suffix/path` or `azblob://container/path`; the path is
  required; blob names are `filepath.Join(path, key)` (cleaned, no leading '/').
- AZBLOB_ACCOUNT_NAME and AZBLOB_ACCOUNT_KEY: a shared key, always both (Longhorn puts
  both into its connection string and has no anonymous mode).
- AZBLOB_ENDPOINT set: the service is path-style, `<endpoint without trailing '/'>/<account>/`
  (Azurite, Azure Stack). Otherwise `https://<account>.blob.<suffix>/`, the suffix from the
  URL. With neither (`azblob://container/path` and no endpoint) Longhorn would ask
  `https://<account>.blob./`: we refuse that with a clear message instead.
- AZBLOB_CERT: PEM CA certificates (the content), trusted in addition to the default ones,
  as Longhorn appends them to the system pool (http/client.go).
- HTTP_PROXY/HTTPS_PROXY/NO_PROXY from the environment, as Go's httpproxy reads them.

The SDK's own retries are off: every call goes through one loop (retry.py) that also
repeats a body cut short while it is read. Account name and key never reach a message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import posixpath
import ssl
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

from longhorn_bi.engine.backup_url import BackupTarget
from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, LonghornBIError, NotFound
from longhorn_bi.engine.store.drivers.base import TooLarge, check_key, fill
from longhorn_bi.engine.store.drivers.retry import Transient, redact, with_retries

T = TypeVar("T")
SECRET_VARS = ("AZBLOB_ACCOUNT_KEY", "AZBLOB_ACCOUNT_NAME")
POOL_SIZE = 32  # connections kept: more than any usual --concurrency / --concurrent-limit
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def service_url(target: BackupTarget, account: str, endpoint: str) -> str:
    """The blob service URL Longhorn's connection string resolves to (see module doc)."""
    if endpoint:
        if not endpoint.startswith(("http://", "https://")):
            raise InvalidInput(
                f"AZBLOB_ENDPOINT {endpoint!r} is not an http:// or https:// URL",
                hint="e.g. AZBLOB_ENDPOINT=http://azurite.example:10000",
            )
        return f"{endpoint.rstrip('/')}/{account}/"
    if not target.region:
        raise InvalidInput(
            f"backup target {target.url} names no endpoint suffix and AZBLOB_ENDPOINT is unset",
            hint="use azblob://container@core.windows.net/path/ or set AZBLOB_ENDPOINT",
        )
    return f"https://{account}.blob.{target.region}/"


def blob_prefix(target: BackupTarget) -> str:
    """The store's folder inside the container: Longhorn trims the leading '/' of the URL
    path and joins keys to it with filepath.Join, which also cleans it."""
    path = target.path.lstrip("/")
    if not path:
        return ""
    cleaned = posixpath.normpath(path)
    return "" if cleaned == "." else cleaned


def _ca_bundle(extra: str) -> str:
    """A CA file with the default trust store plus the PEM certificates in `extra`."""
    try:
        ssl.create_default_context(cadata=extra)
    except (ssl.SSLError, ValueError):
        raise InvalidInput(
            "AZBLOB_CERT holds no valid PEM certificate",
            hint="put the PEM content of the CA certificates in AZBLOB_CERT, not a file name",
        ) from None
    import certifi

    with open(certifi.where()) as default:
        bundle = default.read()
    handle, path = tempfile.mkstemp(prefix="longhorn-bi-ca-", suffix=".pem")
    with os.fdopen(handle, "w") as out:
        out.write(bundle.rstrip("\n") + "\n" + extra)
    return path


class AzureBlobStore:
    """Objects are block blobs; one Put Blob per object, so a write is atomic."""

    def __init__(self, target: BackupTarget) -> None:
        self._url = target.url
        self.container_name = target.host
        self.prefix = blob_prefix(target)
        account = os.environ.get("AZBLOB_ACCOUNT_NAME", "").strip()
        key = os.environ.get("AZBLOB_ACCOUNT_KEY", "").strip()
        if not account or not key:
            raise InvalidInput(
                "set both AZBLOB_ACCOUNT_NAME and AZBLOB_ACCOUNT_KEY for an azblob:// target",
                hint="they are the keys of Longhorn's backup target credential secret",
            )
        try:  # a shared key is base64, as Go's NewSharedKeyCredential also requires
            base64.b64decode(key, validate=True)
        except binascii.Error:
            raise InvalidInput(
                "AZBLOB_ACCOUNT_KEY is not base64",
                hint="use one of the storage account's access keys, as the portal shows it",
            ) from None
        endpoint = os.environ.get("AZBLOB_ENDPOINT", "").strip()
        account_url = service_url(target, account, endpoint)
        try:
            import requests
            from azure.core.pipeline.transport import RequestsTransport
            from azure.storage.blob import BlobServiceClient
        except ImportError:
            raise BackupstoreError(
                "azblob:// targets need the azure-storage-blob package",
                hint="pip install azure-storage-blob",
            ) from None
        self._cert_file: str | None = None
        cert = os.environ.get("AZBLOB_CERT", "")
        if cert.strip():
            self._cert_file = _ca_bundle(cert)
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        transport = RequestsTransport(
            session=session,
            session_owner=True,
            connection_timeout=10,
            read_timeout=60,
            connection_verify=self._cert_file or True,
        )
        service = BlobServiceClient(
            account_url,
            credential={"account_name": account, "account_key": key},
            transport=transport,
            retry_total=0,  # ours: see module doc
        )
        self.container: Any = service.get_container_client(self.container_name)

    @property
    def url(self) -> str:
        return self._url

    def _blob(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _folder(self, prefix: str) -> str:
        folder = prefix.strip("/")
        if folder:  # "" is the store's own folder
            check_key(folder)
        joined = "/".join(part for part in (self.prefix, folder) if part)
        return joined + "/" if joined else ""

    def _classify(self, what: str) -> Callable[[BaseException], LonghornBIError | Transient | None]:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            DecodeError,
            HttpResponseError,
            IncompleteReadError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        def classify(exc: BaseException) -> LonghornBIError | Transient | None:
            text = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, SECRET_VARS)
            if isinstance(exc, ResourceNotFoundError):
                if getattr(exc, "error_code", None) == "ContainerNotFound":
                    return BackupstoreError(
                        f"Azure container {self.container_name!r} does not exist",
                        hint="create it first: Longhorn does not create it either",
                    )
                return NotFound(f"{what}: not found")
            status = getattr(exc, "status_code", None)
            if isinstance(exc, ClientAuthenticationError) or status == 403:
                return BackupstoreError(
                    f"Azure {what} failed: the account refused the credentials ({text})",
                    hint="check AZBLOB_ACCOUNT_NAME and AZBLOB_ACCOUNT_KEY",
                )
            if isinstance(exc, ServiceRequestError | ServiceResponseError | IncompleteReadError):
                return Transient(text)
            if isinstance(exc, ConnectionError | TimeoutError):
                return Transient(text)
            if isinstance(exc, DecodeError):  # a listing whose body was cut short
                return Transient(text)
            if isinstance(exc, HttpResponseError):
                # No status: the SDK gave up on a body that broke while it was read.
                if status is None or status in _RETRY_STATUS:
                    return Transient(text)
                return BackupstoreError(f"Azure {what} failed: {text}")
            return None

        return classify

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return with_retries(
            fn,
            self._classify(what),
            lambda last: BackupstoreError(f"Azure {what} failed: {last}"),
        )

    def read(self, key: str) -> bytes:
        name = self._blob(key)

        def get() -> bytes:
            data: bytes = self.container.download_blob(name, max_concurrency=1).readall()
            return data

        return self._call(f"read of {key}", get)

    def read_into(self, key: str, buffer: bytearray) -> int:
        """One ranged Get Blob: see base.fill."""
        from azure.core.exceptions import HttpResponseError

        name = self._blob(key)

        def get() -> int:
            try:
                downloader = self.container.download_blob(
                    name, offset=0, length=len(buffer) + 1, max_concurrency=1
                )
            except HttpResponseError as exc:
                if exc.status_code == 416:  # a range from offset 0 fails only on an empty blob
                    return 0
                raise
            return fill(buffer, downloader.readall())

        return self._call(f"read of {key}", get)

    def read_at_most(self, key: str, limit: int) -> bytes:
        """The blob, or TooLarge when it holds more than `limit` bytes: one ranged Get Blob
        of limit+1 bytes (a hostile store may put anything where a block or a cfg is)."""
        buffer = bytearray(limit)
        length = self.read_into(key, buffer)
        if length < 0:
            raise TooLarge(f"{key} in {self.url} is larger than {limit} bytes")
        return bytes(buffer[:length])

    def write(
        self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        name = self._blob(key)
        payload = bytes(data) if not isinstance(data, bytes) else data
        self._call(
            f"write of {key}",
            lambda: self.container.upload_blob(
                name, payload, length=len(payload), overwrite=True, max_concurrency=1
            ),
        )

    def sync(self) -> None:
        return None  # a completed Put Blob is durable

    def _properties(self, key: str) -> Any:
        name = self._blob(key)
        blob = self.container.get_blob_client(name)
        return self._call(f"properties of {key}", blob.get_blob_properties)

    def exists(self, key: str) -> bool:
        try:
            self._properties(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """One blob. Longhorn's Remove deletes every blob whose name starts with the path
        (azblob_service.go deleteBlobs); the engine only deletes whole object keys."""
        name = self._blob(key)
        with contextlib.suppress(NotFound):
            self._call(f"delete of {key}", lambda: self.container.delete_blob(name))

    def walk(self, prefix: str) -> list[str]:
        folder = self._folder(prefix)
        names = self._call(
            f"list of {prefix or 'the store root'}",
            lambda: list(self.container.list_blob_names(name_starts_with=folder)),
        )
        return sorted(str(name)[len(folder) :] for name in names)

    def list(self, prefix: str) -> list[str]:
        folder = self._folder(prefix)
        items = self._call(
            f"list of {prefix or 'the store root'}",
            lambda: list(self.container.walk_blobs(name_starts_with=folder, delimiter="/")),
        )
        names = {str(item.name)[len(folder) :].rstrip("/") for item in items}
        return sorted(name for name in names if name)

    def size(self, key: str) -> int:
        return int(self._properties(key).size)

    def mtime(self, key: str) -> float:
        return float(self._properties(key).last_modified.timestamp())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()
        if self._cert_file:
            with contextlib.suppress(OSError):
                os.unlink(self._cert_file)
            self._cert_file = None
