"""Cluster facts as plain data, so that rules stay pure.

The same facts come from a set of manifest files (offline, possibly partial) or from a live
cluster (complete: what is absent there does not exist). `facts_from_objects` turns Longhorn
objects of either origin into facts; rules never look anywhere else. Completeness is per
collection: a cluster may let us list backing images but not volumes, and facts from files
merged with it must not make a volume that is only in the files "known not to exist".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from longhorn_bi.engine.backup_url import BackupTarget, parse_target
from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.versions import LonghornVersion

DEFAULT_TARGET_NAME = "default"
# The collections of ClusterFacts, by attribute name.
TARGETS, IMAGES, BACKUPS, VOLUMES = "backup_targets", "backing_images", "backups", "volumes"
COLLECTIONS = (TARGETS, IMAGES, BACKUPS, VOLUMES)
BACKUP_TARGET_SETTING = "backup-target"


@dataclass(frozen=True)
class BackupTargetFact:
    name: str
    url: str  # "" when the target exists but no URL is set: not configured
    available: bool | None = None  # None: unknown (offline)
    credential_secret: str | None = None  # None: unknown; "" none set

    @cached_property
    def store(self) -> BackupTarget | None:
        """The parsed URL, None when empty or invalid. Cached on the fact: the webhook
        compares every restore's backup-url with it, and facts change far less often."""
        try:
            return parse_target(self.url) if self.url else None
        except InvalidBackupURL:
            return None


@dataclass(frozen=True)
class BackingImageFact:
    name: str
    checksum: str = ""
    ready: bool | None = None  # None: unknown; True when any disk copy is ready
    data_engine: str = "v1"
    secret: str = ""  # spec.secret: Longhorn takes a non-empty one as "this image is encrypted"
    # status.checksum is set (Longhorn has the image's content); None: unknown (no status)
    has_status_checksum: bool | None = None


@dataclass(frozen=True)
class BackupFact:
    name: str
    backing_image: str
    target_name: str = DEFAULT_TARGET_NAME
    url: str = ""
    checksum: str = ""
    state: str = ""
    user_created: bool = True


@dataclass(frozen=True)
class VolumeFact:
    """What Longhorn checks of the volume a backing image is exported from."""

    name: str
    data_engine: str = "v1"
    robustness: str = ""  # status.robustness; "" unknown (no status)
    # status.currentImage, the engine image the validator looks up; None: unknown (no status)
    current_image: str | None = None


@dataclass(frozen=True)
class ClusterFacts:
    """What is known of the cluster. A collection of None means nothing is known of it."""

    backup_targets: tuple[BackupTargetFact, ...] | None = None
    backing_images: tuple[BackingImageFact, ...] | None = None
    backups: tuple[BackupFact, ...] | None = None
    volumes: tuple[VolumeFact, ...] | None = None
    # True when read from a live cluster: a missing object of a known collection is known not
    # to exist (unless complete_collections says otherwise).
    complete: bool = False
    origin: str = field(default="files", compare=False)
    # The collections known complete, by attribute name; None: those not None when `complete`.
    complete_collections: frozenset[str] | None = None

    def is_complete(self, collection: str) -> bool:
        """Whether an object missing from `collection` is known not to exist."""
        if self.complete_collections is not None:
            return collection in self.complete_collections
        return self.complete and getattr(self, collection) is not None

    # Indexes, built on first use: a validator checks thousands of objects against these.
    @cached_property
    def _targets_by_name(self) -> dict[str, BackupTargetFact]:
        return {t.name: t for t in self.backup_targets or ()}

    @cached_property
    def _images_by_name(self) -> dict[str, BackingImageFact]:
        return {b.name: b for b in self.backing_images or ()}

    @cached_property
    def _backups_by_image(self) -> dict[str, tuple[BackupFact, ...]]:
        index: dict[str, list[BackupFact]] = {}
        for backup in self.backups or ():
            index.setdefault(backup.backing_image, []).append(backup)
        return {image: tuple(found) for image, found in index.items()}

    @cached_property
    def _volumes_by_name(self) -> dict[str, VolumeFact]:
        return {v.name: v for v in self.volumes or ()}

    def target(self, name: str) -> BackupTargetFact | None:
        return self._targets_by_name.get(name)

    def backing_image(self, name: str) -> BackingImageFact | None:
        return self._images_by_name.get(name)

    def volume(self, name: str) -> VolumeFact | None:
        return self._volumes_by_name.get(name)

    def backups_of(self, image: str) -> tuple[BackupFact, ...]:
        """Known backups of one backing image, on any target."""
        return self._backups_by_image.get(image, ())

    def merged(self, other: ClusterFacts) -> ClusterFacts:
        """Facts of both; `other` wins for objects of the same name."""

        def merge(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
            if a is None or b is None:
                return b if a is None else a
            names = {item.name for item in b}
            return tuple(item for item in a if item.name not in names) + b

        return ClusterFacts(
            backup_targets=merge(self.backup_targets, other.backup_targets),
            backing_images=merge(self.backing_images, other.backing_images),
            backups=merge(self.backups, other.backups),
            volumes=merge(self.volumes, other.volumes),
            complete=self.complete or other.complete,
            origin=" and ".join(dict.fromkeys([self.origin, other.origin])),
            # Complete where either side listed the whole collection: the other side can
            # only add objects (from files, to be created), never hide one.
            complete_collections=frozenset(
                c for c in COLLECTIONS if self.is_complete(c) or other.is_complete(c)
            ),
        )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def is_longhorn_object(obj: Mapping[str, Any], kind: str) -> bool:
    api_version = obj.get("apiVersion")
    return obj.get("kind") == kind and (
        api_version is None
        or (isinstance(api_version, str) and api_version.startswith("longhorn.io/"))
    )


def backup_image_name(obj: Mapping[str, Any], version: LonghornVersion) -> str:
    """The backing image a BackupBackingImage is for: spec.backingImage (v1.8+) or its name."""
    spec = _mapping(obj.get("spec"))
    name = _text(_mapping(obj.get("metadata")).get("name"))
    if version.backup_has_backing_image_field:
        return (
            _text(spec.get("backingImage"))
            or _text(_mapping(obj.get("status")).get("backingImage"))
            or name
        )
    return name


def _target_fact(obj: Mapping[str, Any]) -> BackupTargetFact:
    status = _mapping(obj.get("status"))
    available = status.get("available")
    return BackupTargetFact(
        name=_text(_mapping(obj.get("metadata")).get("name")),
        url=_text(_mapping(obj.get("spec")).get("backupTargetURL")),
        available=available if isinstance(available, bool) else None,
        credential_secret=_text(_mapping(obj.get("spec")).get("credentialSecret")),
    )


def _encrypting_secret(spec: Mapping[str, Any]) -> str:
    """The key's secret of a clone with encryption encrypt: Longhorn's data source controller
    copies it to spec.secret, which marks the image encrypted (longhorn-manager
    controller/backing_image_data_source_controller.go, 1.7-1.12)."""
    params = _mapping(spec.get("sourceParameters"))
    if spec.get("sourceType") == "clone" and params.get("encryption") == "encrypt":
        return _text(params.get("secret"))
    return ""


def _image_fact(obj: Mapping[str, Any]) -> BackingImageFact:
    status = _mapping(obj.get("status"))
    disks = _mapping(status.get("diskFileStatusMap"))
    states = [_text(_mapping(d).get("state")) for d in disks.values()]
    ready = any(state == "ready" for state in states) if "status" in obj else None
    spec = _mapping(obj.get("spec"))
    return BackingImageFact(
        name=_text(_mapping(obj.get("metadata")).get("name")),
        checksum=_text(status.get("checksum")) or _text(spec.get("checksum")),
        ready=ready,
        data_engine=_text(spec.get("dataEngine")) or "v1",
        secret=_text(spec.get("secret")) or _encrypting_secret(spec),
        has_status_checksum=bool(_text(status.get("checksum"))) if "status" in obj else None,
    )


def volume_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a Volume its fact is made of. A cache keeps only this: volumes are large
    and their status changes often (size, conditions), which must not rebuild the facts."""
    spec, status = _mapping(obj.get("spec")), _mapping(obj.get("status"))
    kept: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": _mapping(obj.get("metadata")).get("name")},
        "spec": {"dataEngine": spec.get("dataEngine")},
    }
    if "status" in obj:
        kept["status"] = {
            "robustness": status.get("robustness"),
            "currentImage": status.get("currentImage"),
        }
    return kept


def _volume_fact(obj: Mapping[str, Any]) -> VolumeFact:
    status = _mapping(obj.get("status"))
    return VolumeFact(
        name=_text(_mapping(obj.get("metadata")).get("name")),
        data_engine=_text(_mapping(obj.get("spec")).get("dataEngine")) or "v1",
        robustness=_text(status.get("robustness")),
        current_image=_text(status.get("currentImage")) if "status" in obj else None,
    )


def _backup_fact(obj: Mapping[str, Any], version: LonghornVersion) -> BackupFact:
    spec, status = _mapping(obj.get("spec")), _mapping(obj.get("status"))
    user_created = spec.get("userCreated")
    return BackupFact(
        name=_text(_mapping(obj.get("metadata")).get("name")),
        backing_image=backup_image_name(obj, version),
        target_name=_text(spec.get("backupTargetName")) or DEFAULT_TARGET_NAME,
        url=_text(status.get("url")),
        checksum=_text(status.get("checksum")),
        state=_text(status.get("state")),
        user_created=user_created if isinstance(user_created, bool) else True,
    )


def facts_from_objects(
    objects: Iterable[Any],
    version: LonghornVersion,
    *,
    complete: bool = False,
    origin: str = "files",
    unlisted: frozenset[str] = frozenset(),
) -> ClusterFacts:
    """Facts from Longhorn objects, from files (partial) or from a cluster (complete).

    A collection stays unknown (None) unless some object of its kind was seen, or the
    facts are complete; `unlisted` names the collections (attribute names) a cluster did
    not let us list: unknown, whatever the objects. v1.6/v1.7 configure the one target with
    the `backup-target` Setting; it stands as the target named "default".
    """
    targets: dict[str, BackupTargetFact] = {}
    images: dict[str, BackingImageFact] = {}
    backups: dict[str, BackupFact] = {}
    volumes: dict[str, VolumeFact] = {}
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        if is_longhorn_object(obj, "BackupTarget"):
            fact = _target_fact(obj)
            # v1.6/1.7 mirror the Setting into a BackupTarget; the Setting's URL is the truth.
            seen = targets.get(fact.name)
            if seen is None:
                targets[fact.name] = fact
            elif seen.credential_secret is None:  # the Setting came first
                targets[fact.name] = BackupTargetFact(
                    seen.name, seen.url, fact.available, fact.credential_secret
                )
        elif is_longhorn_object(obj, "Setting"):
            if _text(_mapping(obj.get("metadata")).get("name")) == BACKUP_TARGET_SETTING and not (
                version.has_backup_target_crd
            ):
                # Longhorn mirrors the Setting into BackupTarget "default": keep what that
                # object knows beyond the URL (its credential secret, availability).
                mirror = targets.get(DEFAULT_TARGET_NAME)
                targets[DEFAULT_TARGET_NAME] = BackupTargetFact(
                    DEFAULT_TARGET_NAME,
                    _text(obj.get("value")),
                    mirror.available if mirror else None,
                    mirror.credential_secret if mirror else None,
                )
        elif is_longhorn_object(obj, "BackingImage"):
            image = _image_fact(obj)
            images[image.name] = image
        elif is_longhorn_object(obj, "BackupBackingImage"):
            backup = _backup_fact(obj, version)
            backups[backup.name] = backup
        elif is_longhorn_object(obj, "Volume"):
            volume = _volume_fact(obj)
            volumes[volume.name] = volume

    def known(collection: str, found: Mapping[str, Any]) -> tuple[Any, ...] | None:
        if collection in unlisted:
            return None
        return tuple(found.values()) if found or complete else None

    # Spelled out only when some collection was not listed; else `complete` says it all.
    listed = frozenset(COLLECTIONS) - unlisted if complete and unlisted else None
    return ClusterFacts(
        backup_targets=known(TARGETS, targets),
        backing_images=known(IMAGES, images),
        backups=known(BACKUPS, backups),
        volumes=known(VOLUMES, volumes),
        complete=complete,
        origin=origin,
        complete_collections=listed,
    )
