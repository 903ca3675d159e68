"""List+watch caches against the fake Kubernetes API server (real list and watch protocol)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.webhook.app import Settings, create_app
from longhorn_bi.webhook.facts_cache import Backoff, ClusterFactsCache, ResourceCache
from longhorn_bi.webhook.kube import KubeClient, load_auth
from longhorn_bi.webhook.logging_json import JsonFormatter
from longhorn_bi.webhook.metrics import Metrics
from tests.fakekube import FakeKubeServer, crd_file, volume_crd_file, write_kubeconfig
from tests.webhook.helpers import CHECKSUM, NS, TARGET_URL, backing_image, backup, review

FAST = Backoff(0.01, 0.1)


def target(name: str = "default", url: str = TARGET_URL, available: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackupTarget",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"backupTargetURL": url, "credentialSecret": "", "pollInterval": "300s"},
        "status": {"available": available},
    }


def image(name: str, ready: bool = True) -> dict[str, Any]:
    obj = backing_image(name, sourceType="download", sourceParameters={"url": "https://x/i"})
    obj["status"] = {
        "checksum": CHECKSUM,
        "diskFileStatusMap": {"disk-1": {"state": "ready" if ready else "in-progress"}},
    }
    return obj


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition; the per-test timeout bounds it."""
    while not predicate():
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(
    kubeconfig: Path,
    version: LonghornVersion | None = None,
    metrics: Metrics | None = None,
    logger: logging.Logger | None = None,
    watch_timeout: int = 30,
    version_poll_seconds: float = 30.0,
) -> AsyncIterator[ClusterFactsCache]:
    async with KubeClient(load_auth(kubeconfig)) as client:
        cache = ClusterFactsCache(
            client,
            NS,
            version,
            backoff=FAST,
            watch_timeout=watch_timeout,
            metrics=metrics,
            logger=logger,
            version_poll_seconds=version_poll_seconds,
        )
        task = asyncio.create_task(cache.run())
        try:
            yield cache
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def by_plural(cache: ClusterFactsCache) -> dict[str, ResourceCache]:
    return {c.spec.plural: c for c in cache.caches}


@pytest.mark.asyncio
async def test_lists_then_follows_changes(fake_kube: FakeKubeServer, fake_kubeconfig: Path) -> None:
    fake_kube.put(target())
    fake_kube.put(image("parrot"))
    fake_kube.put(image("elsewhere") | {"metadata": {"name": "elsewhere", "namespace": "other"}})
    async with running(fake_kubeconfig) as cache:
        await cache.wait_synced()
        assert cache.version == LonghornVersion(1, 12)  # read from the v1.12 CRDs
        assert sorted(by_plural(cache)) == [
            "backingimages",
            "backupbackingimages",
            "backuptargets",
            "volumes",
        ]
        facts = cache.facts()
        assert facts.complete and facts.origin == "cluster"
        assert [b.name for b in facts.backing_images or ()] == ["parrot"]
        assert facts.target("default") is not None
        assert facts.target("default").available is True  # type: ignore[union-attr]

        fake_kube.put(image("second", ready=False))
        await until(lambda: cache.facts().backing_image("second") is not None)
        assert cache.facts().backing_image("second").ready is False  # type: ignore[union-attr]
        fake_kube.update_status("backuptargets", NS, "default", {"available": False})
        await until(lambda: cache.facts().target("default").available is False)  # type: ignore[union-attr]
        fake_kube.delete("backingimages", NS, "parrot")
        await until(lambda: cache.facts().backing_image("parrot") is None)
        assert all(c.lists == 1 for c in cache.caches)


def volume(name: str, data_engine: str = "v1", robustness: str = "healthy") -> dict[str, Any]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Volume",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"dataEngine": data_engine},
        "status": {"robustness": robustness, "currentImage": "longhornio/longhorn-engine:v1.12.1"},
    }


@pytest.mark.asyncio
async def test_volumes_are_cached_for_the_export_rule(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    fake_kube.put(volume("vol1"))
    async with running(fake_kubeconfig) as cache:
        await until(lambda: cache.facts().volumes is not None)
        facts = cache.facts()
        assert facts.is_complete("volumes") and facts.volume("vol1") is not None
        fake_kube.put(volume("vol2", "v2"))
        await until(lambda: cache.facts().volume("vol2") is not None)
        assert cache.facts().volume("vol2").data_engine == "v2"  # type: ignore[union-attr]
        # A status change the facts do not read (volumes change often) keeps the built facts.
        built = cache.facts()
        volumes = by_plural(cache)["volumes"]
        fake_kube.update_status("volumes", NS, "vol1", {"actualSize": "4096"})
        newest = str(fake_kube.resource_version)
        await until(lambda: volumes.resource_version == newest)
        assert cache.facts() is built
        fake_kube.update_status("volumes", NS, "vol1", {"robustness": "faulted"})
        await until(lambda: cache.facts().volume("vol1").robustness == "faulted")  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_forbidden_volumes_leave_only_volumes_unknown(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    """A Role without `volumes` (a chart from before LHB408): the other facts are served,
    complete; volumes stay unknown, so the export rule is silent instead of denying."""
    fake_kube.forbid("list", "volumes")
    fake_kube.put(image("parrot"))
    async with running(fake_kubeconfig) as cache:
        await cache.wait_synced()
        facts = cache.facts()
        assert facts.backing_image("parrot") is not None and facts.is_complete("backing_images")
        assert facts.volumes is None and not facts.is_complete("volumes")
        assert not by_plural(cache)["volumes"].synced.is_set()


@pytest.mark.asyncio
async def test_410_gone_lists_again(fake_kube: FakeKubeServer, fake_kubeconfig: Path) -> None:
    metrics = Metrics()
    fake_kube.put(image("parrot"))
    async with running(fake_kubeconfig, metrics=metrics) as cache:
        await cache.wait_synced()
        await asyncio.to_thread(fake_kube.wait_for_watchers, 3)  # off the loop
        caches = by_plural(cache)
        # A change the backingimages watch does not see moves the server past its version;
        # after compaction that version is gone, so its next watch gets 410.
        fake_kube.put(target())
        await until(lambda: cache.facts().target("default") is not None)
        fake_kube.compact()
        fake_kube.drop_watches()
        await until(lambda: caches["backingimages"].lists == 2)
        # The backuptargets watch had seen the newest version: it resumes without a list.
        fake_kube.put(target("second"))
        await until(lambda: cache.facts().target("second") is not None)
        assert caches["backuptargets"].lists == 1
        fake_kube.put(image("after"))
        await until(lambda: cache.facts().backing_image("after") is not None)
        assert cache.facts().backing_image("parrot") is not None
    text = metrics.exposition().decode()
    assert 'watch_restarts_total{reason="expired",resource="backingimages"} 1.0' in text


@pytest.mark.asyncio
async def test_bookmarks_keep_an_idle_watch_current(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    async with running(fake_kubeconfig, watch_timeout=1) as cache:
        await cache.wait_synced()
        images = by_plural(cache)["backingimages"]
        listed_at = images.resource_version
        # A change the backingimages watch does not see; the bookmark at the end of its
        # (1 s) watch still moves it to the newest version...
        fake_kube.put(target())
        newest = str(fake_kube.resource_version)
        await until(lambda: images.resource_version == newest)
        assert listed_at != newest
        # ...so compaction costs it no re-list.
        fake_kube.compact()
        fake_kube.drop_watches()
        fake_kube.put(image("after"))
        await until(lambda: cache.facts().backing_image("after") is not None)
        assert images.lists == 1
        ages = dict(cache.ages())
        assert set(ages) == {"backuptargets", "backingimages", "backupbackingimages", "volumes"}
        assert all(age is not None and age >= 0 for age in ages.values())


@pytest.mark.asyncio
async def test_dropped_watches_resume_without_listing(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    async with running(fake_kubeconfig) as cache:
        await cache.wait_synced()
        for round_ in range(3):
            await asyncio.to_thread(fake_kube.wait_for_watchers, 3)  # off the loop
            fake_kube.drop_watches()
            name = f"img-{round_}"
            fake_kube.put(image(name))
            await until(lambda n=name: cache.facts().backing_image(n) is not None)  # type: ignore[misc]
        assert all(c.lists == 1 for c in cache.caches)
    watches = [q for m, p, q in fake_kube.requests if q.get("watch") == "true"]
    # Every watch after the first resumes from a resourceVersion, never from "now".
    assert all(q.get("resourceVersion") for q in watches)
    assert all(q.get("allowWatchBookmarks") == "true" for q in watches)


@pytest.mark.asyncio
async def test_errors_back_off_and_recover(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    metrics = Metrics()
    stream = io.StringIO()
    logger = logging.getLogger("test.facts.errors")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    fake_kube.fail("list", "backingimages", 500, times=3)
    fake_kube.forbid("list", "backupbackingimages", times=2)
    fake_kube.put(image("parrot"))
    async with running(fake_kubeconfig, metrics=metrics, logger=logger) as cache:
        await cache.wait_synced()
        assert cache.facts().backing_image("parrot") is not None
    text = metrics.exposition().decode()
    assert 'watch_restarts_total{reason="error",resource="backingimages"} 3.0' in text
    assert 'watch_restarts_total{reason="error",resource="backupbackingimages"} 2.0' in text
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    forbidden = [r for r in records if r.get("resource") == "backupbackingimages" and "error" in r]
    assert len(forbidden) == 2
    assert "RBAC" in forbidden[0]["hint"]
    assert "403" in forbidden[0]["error"]
    assert all(0 < r["retry_in"] <= 0.12 for r in records if "retry_in" in r)


@pytest.mark.asyncio
async def test_readyz_only_after_every_cache_synced(
    aiohttp_client, fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    fake_kube.forbid("list", "backupbackingimages")  # never lifted: never synced
    async with running(fake_kubeconfig) as cache:
        app = create_app(Settings(), cache, Metrics())
        client = await aiohttp_client(app)
        await until(
            lambda: (
                "backingimages" in by_plural(cache)
                and by_plural(cache)["backingimages"].synced.is_set()
            )
        )
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert "backupbackingimages" in await resp.text()
        # Unsynced facts are unknown, so cluster rules stay silent rather than guess.
        assert cache.facts().backing_images is None


@pytest.mark.asyncio
async def test_reviews_use_live_facts(
    aiohttp_client, fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    fake_kube.put(target())
    async with running(fake_kubeconfig) as cache:
        client = await aiohttp_client(create_app(Settings(), cache, Metrics()))
        await cache.wait_synced()
        assert (await client.get("/readyz")).status == 200

        async def answer(obj: dict[str, Any]) -> dict[str, Any]:
            resp = await client.post("/validate", json=review(obj))
            result: dict[str, Any] = (await resp.json())["response"]
            return result

        denied = await answer(backup("fresh"))
        assert (
            "[LHB402] spec.backingImage: backing image 'fresh' does not exist in the cluster"
            in (denied["status"]["message"])
        )
        fake_kube.put(image("fresh"))
        await until(lambda: cache.facts().backing_image("fresh") is not None)
        assert (await answer(backup("fresh")))["allowed"] is True

        fake_kube.update_status("backuptargets", NS, "default", {"available": False})
        await until(lambda: cache.facts().target("default").available is False)  # type: ignore[union-attr]
        assert "[LHB401]" in (await answer(backup("fresh")))["status"]["message"]

        # A restore from a store that is not a configured target.
        obj = backing_image()
        obj["spec"]["sourceParameters"]["backup-url"] = "s3://other@us-east-1/?backingImage=parrot"
        assert "[LHB404]" in (await answer(obj))["status"]["message"]
    assert not [r for r in fake_kube.requests if r[0] != "GET"]  # reviews never write


@pytest.mark.asyncio
async def test_longhorn_v16_uses_the_backup_target_setting(tmp_path: Path) -> None:
    with FakeKubeServer(crds=(crd_file("1.6"), volume_crd_file("1.6")), token="t") as fake:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url, token="t")
        fake.put(
            {
                "apiVersion": "longhorn.io/v1beta2",
                "kind": "Setting",
                "metadata": {"name": "backup-target", "namespace": NS},
                "value": TARGET_URL,
            }
        )
        fake.put(
            {
                "apiVersion": "longhorn.io/v1beta2",
                "kind": "Setting",
                "metadata": {"name": "backup-concurrent-limit", "namespace": NS},
                "value": "2",
            }
        )
        async with running(kubeconfig) as cache:
            await cache.wait_synced()
            assert cache.version == LonghornVersion(1, 6)
            assert sorted(by_plural(cache)) == [
                "backingimages",
                "backupbackingimages",
                "settings",
                "volumes",
            ]
            assert list(by_plural(cache)["settings"].objects) == ["backup-target"]
            default = cache.facts().target("default")
            assert default is not None and default.url == TARGET_URL
            fake.put(
                {
                    "apiVersion": "longhorn.io/v1beta2",
                    "kind": "Setting",
                    "metadata": {"name": "backup-target", "namespace": NS},
                    "value": "",
                }
            )
            await until(lambda: cache.facts().target("default").url == "")  # type: ignore[union-attr]
        lists = [q for m, p, q in fake.requests if p.endswith("/settings")]
        assert all(q.get("fieldSelector") == "metadata.name=backup-target" for q in lists)


@pytest.mark.asyncio
async def test_version_detection_waits_for_longhorn(tmp_path: Path) -> None:
    with FakeKubeServer(token="t") as fake:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url, token="t")
        async with running(kubeconfig) as cache:
            await until(lambda: len(fake.requests) >= 4)  # tried twice: no CRDs yet
            assert cache.version is None and not cache.ready()
            from tests.fakekube.store import crd_resource, load_crds

            for crd in load_crds(crd_file("1.12")):
                fake.store.register(crd_resource(crd))
                fake.put(crd)
            await cache.wait_synced()
            assert cache.version == LonghornVersion(1, 12)


@pytest.mark.asyncio
async def test_an_upgrade_of_the_crds_switches_the_version_line(tmp_path: Path) -> None:
    from tests.fakekube.store import crd_resource, load_crds

    with FakeKubeServer(crds=(crd_file("1.6"), volume_crd_file("1.6")), token="t") as fake:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url, token="t")
        async with running(kubeconfig, version_poll_seconds=0.05) as cache:
            await cache.wait_synced()
            assert cache.version == LonghornVersion(1, 6)
            assert "settings" in by_plural(cache)
            # Longhorn's upgrade replaces its CRDs first (chart/templates/crds.yaml).
            for crd in load_crds(crd_file("1.12")):
                fake.store.register(crd_resource(crd))
                fake.put(crd)
            await until(lambda: cache.version == LonghornVersion(1, 12))
            await cache.wait_synced()
            assert "backuptargets" in by_plural(cache)
            assert "settings" not in by_plural(cache)


@pytest.mark.asyncio
async def test_an_explicit_version_skips_detection(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path
) -> None:
    async with running(fake_kubeconfig, version=LonghornVersion(1, 7)) as cache:
        await cache.wait_synced()
        assert "settings" in by_plural(cache)
    assert not [p for m, p, q in fake_kube.requests if "customresourcedefinitions" in p]


def test_the_auth_object_never_shows_its_token(tmp_path: Path) -> None:
    from longhorn_bi.webhook.kube import KubeAuth

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1", token="s3cr3t")
    auth = load_auth(kubeconfig)
    assert auth.token == "s3cr3t"
    for shown in (repr(auth), str(auth), f"{auth}", repr(KubeAuth("https://h", token="s3cr3t"))):
        assert "s3cr3t" not in shown


@pytest.mark.parametrize(
    ("api_key", "prefix", "token"),
    [
        ({"BearerToken": "bearer abc"}, {}, "abc"),  # the in-cluster loader's form
        ({"BearerToken": "Bearer abc"}, {}, "abc"),  # load_kube_config's form
        ({"authorization": "abc"}, {"authorization": "Bearer"}, "abc"),  # older clients
        ({}, {}, ""),
    ],
)
def test_bearer_token_forms(api_key: dict[str, str], prefix: dict[str, str], token: str) -> None:
    from longhorn_bi.webhook.kube import bearer_token

    assert bearer_token(api_key, prefix) == token
