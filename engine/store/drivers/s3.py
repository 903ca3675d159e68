"""s3:// driver: boto3 configured from Longhorn's credential keys, as environment variables.

AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (both or neither), AWS_SESSION_TOKEN,
AWS_ENDPOINTS (custom endpoint), AWS_CERT (PEM CA bundle, the content itself),
VIRTUAL_HOSTED_STYLE ("true"/"false"; unset = path style when AWS_ENDPOINTS is set, as in
longhorn/backupstore s3_service.go), HTTP_PROXY/HTTPS_PROXY/NO_PROXY. Region from the URL
(bucket@region) or AWS_REGION. Secret values never reach a message: see `redact`.

Every call retries throttling, connection resets and 5xx with exponential backoff: botocore's
standard mode covers the request, our loop also covers a body that breaks while it is read.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, unquote

from longhorn_bi.engine.backup_url import BackupTarget, s3_key_prefix
from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, NotFound
from longhorn_bi.engine.store.drivers.base import TooLarge, check_key, stream_into

T = TypeVar("T")
SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")
# URLs that may carry credentials as userinfo (scheme://user:password@host).
URL_VARS = ("AWS_ENDPOINTS", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
ATTEMPTS = 5  # ours, around botocore's own 4: a body cut while read is retried here
BASE_DELAY = 0.05
MAX_DELAY = 2.0
_RETRY_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
}
# The userinfo of an http(s) URL: `https://user:password@` becomes `https://***@`. (Not of
# s3:// URLs, whose userinfo is the bucket.)
_USERINFO = re.compile(r"(?i)(?<=http://)[^/?#@\s'\"]+@|(?<=https://)[^/?#@\s'\"]+@")


def _forms(secret: str) -> set[str]:
    """A secret as it may appear in a message: as is, decoded, and URL-encoded (either case)."""
    forms = {secret, unquote(secret), quote(secret, safe=""), quote(secret), quote_plus(secret)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in set(forms)}
    return {form for form in forms if len(form) >= 3}


def secret_values() -> list[str]:
    """Every credential in the environment, in every form it may be printed in; longest first."""
    found: set[str] = set()
    for var in SECRET_VARS:
        value = os.environ.get(var, "")
        if len(value) >= 3:
            found |= _forms(value)
    for var in URL_VARS:
        match = _USERINFO.search(os.environ.get(var, ""))
        if match:
            userinfo = match.group()[:-1]  # user:password, or a token alone
            found |= _forms(userinfo) | _forms(userinfo.rpartition(":")[2])
    return sorted(found, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` without any credential: userinfo of any URL, and every known secret value."""
    text = _USERINFO.sub("***@", text)
    for value in secret_values():
        text = text.replace(value, "***")
    return text


def _redact_log_lines() -> None:
    """Every log line (botocore and urllib3 log endpoints, proxies and headers at DEBUG)
    goes through `redact`, whoever configured the logging: the record factory (called only
    for records a logger will handle) formats and redacts each message once."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.msg, record.args = redact(record.getMessage()), None
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _virtual_hosted_style() -> bool | None:
    """VIRTUAL_HOSTED_STYLE as s3/s3_service.go compares it: exactly "true" or "false";
    anything else counts as unset (v1.6.4 .. v1.12.1)."""
    value = os.environ.get("VIRTUAL_HOSTED_STYLE", "")
    return True if value == "true" else False if value == "false" else None


class S3Store:
    def __init__(self, target: BackupTarget) -> None:
        import boto3
        from botocore.config import Config

        _redact_log_lines()
        self._url = target.url
        self.bucket = target.host
        self.prefix = s3_key_prefix(target.path)
        key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if bool(key_id) != bool(secret):
            raise InvalidInput(
                "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
                hint="they are the keys of Longhorn's backup target credential secret",
            )
        # Read as s3/s3_service.go reads them: the endpoint as given, set when not empty.
        endpoint = os.environ.get("AWS_ENDPOINTS", "") or None
        virtual = _virtual_hosted_style()
        path_style = (not virtual) if virtual is not None else endpoint is not None
        region = target.region or os.environ.get("AWS_REGION") or "us-east-1"
        proxies = {
            scheme: os.environ[var]
            for scheme, var in (("http", "HTTP_PROXY"), ("https", "HTTPS_PROXY"))
            if os.environ.get(var)
        }
        self._cert_file: str | None = None
        verify: bool | str | None = None
        cert = os.environ.get("AWS_CERT", "")
        if cert.strip():
            handle, self._cert_file = tempfile.mkstemp(prefix="longhorn-bi-ca-", suffix=".pem")
            with os.fdopen(handle, "w") as out:
                out.write(cert)
            verify = self._cert_file
        config = Config(
            region_name=region,
            retries={"max_attempts": 4, "mode": "standard"},
            s3={"addressing_style": "path" if path_style else "virtual"},
            proxies=proxies or None,
            max_pool_connections=32,
            connect_timeout=10,
            read_timeout=60,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=key_id or None,
            aws_secret_access_key=secret or None,
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        )
        try:
            self.client: Any = session.client(
                "s3", endpoint_url=endpoint, verify=verify, config=config
            )
        except ValueError:  # botocore: an endpoint that is not a URL
            self.close()
            raise InvalidInput(  # not echoed: it may hold a credential in a form not known
                "AWS_ENDPOINTS is not a usable endpoint URL",
                hint="give the endpoint as http(s)://host[:port], or unset AWS_ENDPOINTS",
            ) from None

    @property
    def url(self) -> str:
        return self._url

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            EndpointConnectionError,
            HTTPClientError,
            IncompleteReadError,
            ResponseStreamingError,
        )
        from urllib3.exceptions import HTTPError as Urllib3Error

        # A body cut while it is read surfaces from urllib3 itself, or as a plain reset.
        transient = (
            ConnectionError,
            HTTPClientError,
            IncompleteReadError,
            ResponseStreamingError,
            Urllib3Error,
            ConnectionResetError,
            TimeoutError,
        )
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn()
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code in ("NoSuchKey", "404", "NotFound"):
                    raise NotFound(f"{what}: not found") from None
                if code == "NoSuchBucket":
                    raise BackupstoreError(f"S3 bucket {self.bucket!r} does not exist") from None
                retry = status >= 500 or code in _RETRY_CODES
                if not retry or attempt == ATTEMPTS:
                    message = redact(str(error.get("Message", "")) or str(exc))
                    raise BackupstoreError(
                        f"S3 {what} failed: {code or status} {message}"
                    ) from None
            except EndpointConnectionError as exc:  # botocore retried already: nobody answers
                raise BackupstoreError(f"S3 {what} failed: {redact(str(exc))}") from None
            except transient as exc:
                if attempt == ATTEMPTS:
                    raise BackupstoreError(f"S3 {what} failed: {redact(str(exc))}") from None
            except BotoCoreError as exc:
                raise BackupstoreError(f"S3 {what} failed: {redact(str(exc))}") from None
            time.sleep(min(MAX_DELAY, BASE_DELAY * 2**attempt) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def read(self, key: str) -> bytes:
        full = self._key(key)

        def get() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
            with contextlib.closing(body):
                return body.read()  # type: ignore[no-any-return]

        return self._call(f"read of {key}", get)

    def read_at_most(self, key: str, limit: int) -> bytes:
        """The object, or TooLarge when it holds more than `limit` bytes: one ranged GET of
        at most limit + 1 bytes, instead of a HEAD then a GET (half the requests per block)."""
        full = self._key(key)

        def get() -> bytes:
            try:
                response = self.client.get_object(
                    Bucket=self.bucket, Key=full, Range=f"bytes=0-{limit}"
                )
            except Exception as exc:  # an empty object has no byte 0: S3 says InvalidRange
                if getattr(exc, "response", {}).get("Error", {}).get("Code") == "InvalidRange":
                    return b""
                raise
            with contextlib.closing(response["Body"]) as body:
                return body.read()  # type: ignore[no-any-return]

        data = self._call(f"read of {key}", get)
        if len(data) > limit:
            raise TooLarge(f"{key} in {self._url} is larger than {limit} bytes")
        return data

    def read_into(self, key: str, buffer: bytearray) -> int:
        """One ranged GetObject, read into `buffer`: see base.stream_into."""
        from botocore.exceptions import ClientError

        full = self._key(key)

        def get() -> int:
            try:
                answer = self.client.get_object(
                    Bucket=self.bucket, Key=full, Range=f"bytes=0-{len(buffer)}"
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return 0  # a range from offset 0 fails only on an empty object
                raise
            with contextlib.closing(answer["Body"]) as body:
                return stream_into(buffer, body)

        return self._call(f"read of {key}", get)

    def write(
        self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        full = self._key(key)
        payload = bytes(data) if isinstance(data, memoryview) else data
        self._call(
            f"write of {key}",
            lambda: self.client.put_object(Bucket=self.bucket, Key=full, Body=payload),
        )

    def sync(self) -> None:
        return None  # a completed PUT is durable

    def _head(self, key: str) -> dict[str, Any]:
        full = self._key(key)
        return self._call(
            f"head of {key}", lambda: self.client.head_object(Bucket=self.bucket, Key=full)
        )

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        full = self._key(key)
        self._call(
            f"delete of {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=full)
        )

    def walk(self, prefix: str) -> list[str]:
        folder = self._key(prefix.rstrip("/")) + "/"
        keys: list[str] = []

        def page(token: str | None) -> dict[str, Any]:
            args = {"Bucket": self.bucket, "Prefix": folder}
            if token:
                args["ContinuationToken"] = token
            return self.client.list_objects_v2(**args)  # type: ignore[no-any-return]

        token: str | None = None
        while True:
            answer = self._call(f"list of {prefix}", functools.partial(page, token))
            keys.extend(item["Key"][len(folder) :] for item in answer.get("Contents", []))
            if not answer.get("IsTruncated"):
                return sorted(keys)
            token = answer.get("NextContinuationToken")

    def list(self, prefix: str) -> list[str]:
        folder = self._key(prefix.rstrip("/")) + "/"
        names: set[str] = set()

        def page(token: str | None) -> dict[str, Any]:
            args = {"Bucket": self.bucket, "Prefix": folder, "Delimiter": "/"}
            if token:
                args["ContinuationToken"] = token
            return self.client.list_objects_v2(**args)  # type: ignore[no-any-return]

        token: str | None = None
        while True:
            answer = self._call(f"list of {prefix}", functools.partial(page, token))
            for item in answer.get("CommonPrefixes", []):
                names.add(item["Prefix"][len(folder) :].rstrip("/"))
            for item in answer.get("Contents", []):
                names.add(item["Key"][len(folder) :])
            if not answer.get("IsTruncated"):
                break
            token = answer.get("NextContinuationToken")
        return sorted(name for name in names if name)

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def mtime(self, key: str) -> float:
        return float(self._head(key)["LastModified"].timestamp())

    def close(self) -> None:
        if self._cert_file:
            with contextlib.suppress(OSError):
                os.unlink(self._cert_file)
            self._cert_file = None
