"""Choose and verify a cluster's backing image backups from here: targets and Secrets read from the
cluster, every backup read back under Longhorn's lock, the outcome recorded on the object.

Only the BackupBackingImages' annotations and Events are written; the store is never written
to except for Longhorn's own lock file, which is removed afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorn_bi.engine.backup_url import parse_backup_url
from longhorn_bi.engine.errors import (
    BackupstoreError,
    ClusterError,
    InvalidInput,
    LockConflict,
    NotFound,
)
from longhorn_bi.engine.facts import DEFAULT_TARGET_NAME
from longhorn_bi.engine.scrub.credentials import credential_env, store_environment
from longhorn_bi.engine.scrub.outcome import ERROR, FAILED, SKIPPED, Outcome, judge, timestamp
from longhorn_bi.engine.scrub.plan import parse_plan
from longhorn_bi.engine.scrub.shards import BlockSample, sample, shard
from longhorn_bi.plugin.cluster_cmds import PLURAL, target_of
from longhorn_bi.plugin.kube import Kube

CREDENTIAL_SETTING = "backup-target-credential-secret"  # before v1.8
Progress = Callable[[int], None]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def name_of(obj: Mapping[str, Any]) -> str:
    return _text(_mapping(obj.get("metadata")).get("name"))


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    secret: str  # the credential Secret's name, "" when none


def read_target(kube: Kube, name: str) -> Target:
    """A BackupTarget's URL and credential Secret (Longhorn 1.6/1.7 mirror their settings into
    BackupTarget "default"; the setting is read when the mirror has no Secret)."""
    obj = kube.get("backuptargets", name)
    spec = _mapping(obj.get("spec"))
    secret = _text(spec.get("credentialSecret"))
    if not secret and name == DEFAULT_TARGET_NAME:
        setting = kube.find("settings", CREDENTIAL_SETTING)
        secret = _text((setting or {}).get("value"))
    return Target(name, _text(spec.get("backupTargetURL")), secret)


def target_env(kube: Kube, target: Target, scheme: str) -> dict[str, str] | None:
    if not target.secret:
        return None
    return credential_env(scheme, kube.secret_data(target.secret), target.secret)


class ClusterVerifier:
    """Verifies backups of one namespace, target by target, reading each Secret once."""

    def __init__(
        self,
        kube: Kube,
        *,
        concurrency: int = 4,
        record: bool = True,
        pick: BlockSample | None = None,
        seed: str = "",
    ) -> None:
        self.kube = kube
        self.concurrency = concurrency
        self.record = record
        self.pick, self.seed = pick, seed  # a block sample, and the seed it says it drew with
        self._targets: dict[str, Target] = {}
        self._envs: dict[tuple[str, str], dict[str, str] | None] = {}

    def _env(self, obj: Mapping[str, Any], scheme: str) -> dict[str, str] | None:
        name = target_of(obj)
        if name not in self._targets:
            self._targets[name] = read_target(self.kube, name)
        key = (name, scheme)
        if key not in self._envs:
            self._envs[key] = target_env(self.kube, self._targets[name], scheme)
        return self._envs[key]

    def verify(self, obj: Mapping[str, Any], progress: Progress | None = None) -> Outcome:
        outcome = self._verify(obj, progress)
        if self.record and outcome.result != SKIPPED:
            self.kube.annotate(PLURAL, outcome.backup, outcome.annotations())
            if outcome.result != "ok":
                # The annotation holds the result; an Event we may not create is no reason
                # to stop verifying.
                with contextlib.suppress(ClusterError, NotFound):
                    self._event(obj, outcome)
        return outcome

    def _verify(self, obj: Mapping[str, Any], progress: Progress | None) -> Outcome:
        from longhorn_bi.engine.store.verify import verify_backup

        name = name_of(obj)
        status = _mapping(obj.get("status"))
        state, url = _text(status.get("state")), _text(status.get("url"))
        if state != "Completed" or not url:
            return Outcome(name, SKIPPED, f"not completed (state {state or 'unset'})")
        try:
            parsed = parse_backup_url(url)
            env = self._env(obj, parsed.target.scheme)
            with store_environment(env):
                result = verify_backup(
                    url, concurrent_limit=self.concurrency, progress=progress, pick=self.pick
                )
        except LockConflict as exc:
            return Outcome(name, SKIPPED, exc.message)
        except NotFound as exc:
            return Outcome(name, FAILED, exc.message, at=timestamp())
        except (BackupstoreError, InvalidInput) as exc:
            return Outcome(name, ERROR, exc.message, at=timestamp())
        return judge(name, result, _text(status.get("checksum")), self.seed)

    def _event(self, obj: Mapping[str, Any], outcome: Outcome) -> None:
        """A Warning Event on the backup, where `kubectl describe` and alerting see it."""
        metadata = _mapping(obj.get("metadata"))
        stamp = outcome.at or timestamp()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{outcome.backup}.verify-",
                "namespace": self.kube.namespace,
            },
            "involvedObject": {
                "apiVersion": _text(obj.get("apiVersion")) or "longhorn.io/v1beta2",
                "kind": "BackupBackingImage",
                "name": outcome.backup,
                "namespace": self.kube.namespace,
                "uid": _text(metadata.get("uid")),
            },
            "type": "Warning",
            "reason": "BackupVerifyFailed" if outcome.result == FAILED else "BackupVerifyError",
            "message": outcome.annotation,
            "source": {"component": "longhorn-bi-verify"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        path = self.kube.core_path("events")
        self.kube.rest("POST", path, verb="create", plural="events", body=event)


def stored_size(obj: Mapping[str, Any]) -> int:
    """status.size in bytes (an int or a digit string), 0 when unknown."""
    value = (obj.get("status") or {}).get("size")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def select(
    kube: Kube,
    names: tuple[str, ...],
    *,
    all_: bool,
    target: str | None,
    fraction: float,
    seed: str,
    shards: int,
    index: int,
) -> list[dict[str, Any]]:
    """The BackupBackingImages this run (or shard) verifies, sorted by name."""
    if not names and not all_ and not target:
        raise InvalidInput(
            "say which backups to verify",
            hint="name them (verify BACKUP...), or give --all or --target NAME",
        )
    if names:
        objects = [kube.get(PLURAL, name) for name in dict.fromkeys(names)]
    else:
        objects = kube.list(PLURAL)
    if target:
        objects = [o for o in objects if target_of(o) == target]
    by_name = {str((o.get("metadata") or {}).get("name", "")): o for o in objects}
    chosen = shard(sample(by_name, fraction, seed), shards, index)
    return [by_name[name] for name in chosen]


def planned(kube: Kube, plan_dir: str, index: int) -> tuple[list[dict[str, Any]], list[Outcome]]:
    """The BackupBackingImages of shard `index`'s plan file (see verify --in-cluster), and a
    skipped outcome for each planned backup deleted since the plugin made the plan."""
    path = Path(plan_dir) / str(index)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InvalidInput(
            f"no plan for shard {index}: {path} does not exist",
            hint="--plan-dir is the folder of the plan's ConfigMap, one file per index "
            "(JOB_COMPLETION_INDEX or --shard-index picks it)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the plan file {path}: {exc}") from None
    names = parse_plan(text, index, str(path))
    if not names:
        return [], []
    by_name = {name_of(o): o for o in kube.list(PLURAL)}
    gone = [
        Outcome(n, SKIPPED, "deleted since the plan was made") for n in names if n not in by_name
    ]
    return [by_name[n] for n in names if n in by_name], gone
