"""Live cluster facts for the rule set, and the Longhorn version of the cluster.

Preflight never re-implements a rule: it lists what the rules need (backup targets, the
backup-target setting on 1.6/1.7, backing images, backups, volumes) and hands it to the
engine as complete facts, so that "not found" there means "does not exist". Volumes are
optional: only the export rule reads them, so where RBAC denies listing them they stay
unknown (that rule is silent) instead of failing the command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from longhorn_bi.engine.errors import ClusterError, Forbidden, InvalidInput
from longhorn_bi.engine.facts import (
    BACKUP_TARGET_SETTING,
    VOLUMES,
    ClusterFacts,
    facts_from_objects,
)
from longhorn_bi.engine.versions import LonghornVersion, detect_version
from longhorn_bi.plugin.kube import API_VERSION, GROUP, KINDS, Kube, Unreachable, connection_from

# The CRDs whose schema tells the version line when the chart's version label is missing.
VERSION_CRDS = ("backupbackingimages.longhorn.io", "backingimages.longhorn.io")
FACT_PLURALS = ("backuptargets", "backingimages", "backupbackingimages")


def resolve_version(kube: Kube, given: LonghornVersion | None) -> LonghornVersion:
    """`given`, or the version of Longhorn's CRDs installed in the cluster (auto)."""
    if given is not None:
        return given
    host = kube.host  # a kubeconfig problem is reported as such, not as a detection failure
    try:
        crds = [crd for name in VERSION_CRDS if (crd := kube.get_crd(name)) is not None]
        return detect_version(crds)
    except InvalidInput as exc:
        raise ClusterError(f"{exc.message} at {host}", hint=exc.hint) from None
    except Unreachable:
        raise
    except ClusterError as exc:
        raise ClusterError(
            f"cannot detect the Longhorn version: {exc.message}",
            hint="give --longhorn-version (e.g. 1.12), or " + (exc.hint or "check access"),
        ) from None


def _typed(plural: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """List items may omit apiVersion/kind; the facts need them."""
    for obj in objects:
        obj.setdefault("apiVersion", f"{GROUP}/{API_VERSION}")
        obj.setdefault("kind", KINDS[plural])
    return objects


def cluster_objects(
    kube: Kube, version: LonghornVersion
) -> tuple[list[dict[str, Any]], frozenset[str]]:
    """The objects the rules need, and the collections (ClusterFacts attribute names) that
    RBAC did not let us list."""
    objects: list[dict[str, Any]] = []
    for plural in FACT_PLURALS:
        objects.extend(_typed(plural, kube.list(plural)))
    if not version.has_backup_target_crd:
        setting = kube.find("settings", BACKUP_TARGET_SETTING)
        if setting is not None:
            objects.extend(_typed("settings", [setting]))
    try:
        objects.extend(_typed("volumes", kube.list("volumes")))
    except Forbidden:
        return objects, frozenset({VOLUMES})
    return objects, frozenset()


def gather_facts(kube: Kube, version: LonghornVersion) -> ClusterFacts:
    """Complete facts of the namespace: what is not listed does not exist."""
    objects, unlisted = cluster_objects(kube, version)
    return facts_from_objects(objects, version, complete=True, origin="cluster", unlisted=unlisted)


def live_facts(
    namespace: str, connection: Mapping[str, Any], version: LonghornVersion | None
) -> tuple[LonghornVersion, ClusterFacts]:
    """The version (detected when None) and the complete facts of a command's cluster."""
    kube = Kube(connection_from(namespace, connection))
    detected = resolve_version(kube, version)
    return detected, gather_facts(kube, detected)
