"""Shared pieces of the webhook tests: objects, reviews, certificates, a threaded server."""

from __future__ import annotations

import asyncio
import copy
import http.client
import json
import ssl
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from longhorn_bi.engine.backup_url import format_backup_url
from longhorn_bi.engine.facts import (
    BackingImageFact,
    BackupFact,
    BackupTargetFact,
    ClusterFacts,
    VolumeFact,
)
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.listener import BoundedTLSSite, Limits

NS = "longhorn-system"
LONGHORN_SA = f"system:serviceaccount:{NS}:longhorn-service-account"
# From 1.8 a backup target is s3, nfs, cifs or azblob; nfs needs no credential secret.
TARGET_URL = "nfs://nfs.example:/opt/backupstore"
CHECKSUM = "a" * 128
OTHER_CHECKSUM = "b" * 128
V112 = LonghornVersion(1, 12)


def cluster_facts() -> ClusterFacts:
    """A v1.12 cluster: target `default` available, image `parrot` ready and backed up, a
    healthy v1 volume `vol1`."""
    return ClusterFacts(
        backup_targets=(BackupTargetFact("default", TARGET_URL, True),),
        backing_images=(BackingImageFact("parrot", CHECKSUM, True),),
        backups=(
            BackupFact(
                "parrot",
                "parrot",
                "default",
                format_backup_url(TARGET_URL, "parrot"),
                CHECKSUM,
                "Completed",
            ),
        ),
        volumes=(VolumeFact("vol1", "v1", "healthy", "longhornio/longhorn-engine:v1.12.1"),),
        complete=True,
        origin="cluster",
    )


class BrokenFacts(StaticFacts):
    """A facts source with a bug: every review hits an internal error."""

    def facts(self) -> ClusterFacts:
        raise KeyError("a bug")


def backing_image(name: str = "restored", **spec: Any) -> dict[str, Any]:
    """A valid restore BackingImage of the backup of `parrot`, with `spec` merged in."""
    base: dict[str, Any] = {
        "sourceType": "restore",
        "sourceParameters": {
            "backup-url": format_backup_url(TARGET_URL, "parrot"),
            "concurrent-limit": "2",
        },
        "checksum": CHECKSUM,
    }
    base.update(spec)
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackingImage",
        "metadata": {"name": name, "namespace": NS},
        "spec": base,
    }


def backup(name: str = "fresh", **spec: Any) -> dict[str, Any]:
    """A valid v1.12 BackupBackingImage of image `fresh` (which tests add to the facts)."""
    base: dict[str, Any] = {"userCreated": True, "backingImage": name}
    base.update(spec)
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackupBackingImage",
        "metadata": {"name": name, "namespace": NS},
        "spec": base,
    }


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    uid: str | None = None,
    dry_run: bool = False,
    namespace: str = NS,
    user: str = "kubernetes-admin",
    user_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview v1 request as the API server sends it, made by `user` (or with the
    whole `user_info`)."""
    source = obj or old or {}
    kind = source.get("kind", "BackingImage")
    kind = kind if isinstance(kind, str) else "BackingImage"
    plural = {"BackingImage": "backingimages", "BackupBackingImage": "backupbackingimages"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "longhorn.io", "version": "v1beta2", "kind": kind},
            "resource": {
                "group": "longhorn.io",
                "version": "v1beta2",
                "resource": plural.get(kind, "things"),
            },
            "requestKind": {"group": "longhorn.io", "version": "v1beta2", "kind": kind},
            "name": _name_of(source),
            "namespace": namespace,
            "operation": operation,
            "userInfo": user_info or {"username": user, "groups": ["system:masters"]},
            "object": copy.deepcopy(obj),
            "oldObject": copy.deepcopy(old),
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def _name_of(obj: dict[str, Any]) -> Any:
    meta = obj.get("metadata")
    return meta.get("name", "") if isinstance(meta, dict) else ""


def client_context(ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    return context


def post(
    conn: http.client.HTTPConnection, body: bytes | dict[str, Any], path: str = "/validate"
) -> tuple[int, Any]:
    """POST on a kept-alive connection; (status, decoded JSON or raw text)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode(errors="replace")


class ThreadedServer:
    """An aiohttp app on 127.0.0.1:0 in a thread of its own, for sync clients (hypothesis,
    threads hammering it during certificate rotation)."""

    def __init__(
        self,
        make_app: Callable[[], web.Application],
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._make_app = make_app
        self.limits = limits or Limits()
        self.site: BoundedTLSSite | None = None
        self._ssl = ssl_context
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._stop())
        self._loop.close()

    async def _start(self) -> None:
        limits = self.limits
        self._runner = web.AppRunner(
            self._make_app(), access_log=None, shutdown_timeout=2, **limits.handler_args()
        )
        await self._runner.setup()
        if self._ssl is None:
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        else:
            self.site = BoundedTLSSite(self._runner, "127.0.0.1", 0, self._ssl, limits)
            await self.site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def connect(self, ca_file: Path | None = None) -> http.client.HTTPConnection:
        if self._ssl is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        assert ca_file is not None
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=30, context=client_context(ca_file)
        )
