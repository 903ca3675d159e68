"""Object store, resourceVersion history and write semantics of the fake API server.

Pure Python and thread-safe (one Condition guards everything); server.py only routes HTTP here.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (plural, namespace or "", name)


@dataclass(frozen=True)
class Resource:
    group: str
    versions: tuple[str, ...]  # served versions, the first is the storage version
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = True  # has the status subresource
    custom: bool = True  # custom resources refuse strategic merge patches
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def gr(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str | None = None) -> str:
        v = version or self.versions[0]
        return f"{self.group}/{v}" if self.group else v


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body["message"] = self.message
        if self.reason:  # StatusReasonUnknown ("") is omitted on the wire
            body["reason"] = self.reason
        body["code"] = self.code
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(res: Resource, name: str) -> ApiError:
    details = {"name": name, "group": res.group, "kind": res.plural}
    return ApiError(404, "NotFound", f'{res.gr} "{name}" not found', details)


def conflict(res: Resource, name: str, why: str) -> ApiError:
    details = {"name": name, "group": res.group, "kind": res.plural}
    return ApiError(
        409, "Conflict", f'Operation cannot be fulfilled on {res.gr} "{name}": {why}', details
    )


def invalid(res: Resource, name: str, field: str, why: str) -> ApiError:
    gk = f"{res.kind}.{res.group}" if res.group else res.kind
    cause = {"reason": "FieldValueInvalid", "message": why, "field": field}
    details = {"name": name, "group": res.group, "kind": res.kind, "causes": [cause]}
    return ApiError(422, "Invalid", f'{gk} "{name}" is invalid: {field}: {why}', details)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise ValueError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)

    def walk(path: str) -> tuple[Any, str]:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        if not parts:
            raise ValueError(f"cannot operate on the whole document: {path!r}")
        node = doc
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        return node, parts[-1]

    def get(path: str) -> Any:
        node, last = walk(path)
        return node[int(last)] if isinstance(node, list) else node[last]

    def remove(path: str) -> Any:
        node, last = walk(path)
        return node.pop(int(last) if isinstance(node, list) else last)

    def add(path: str, value: Any) -> None:
        node, last = walk(path)
        if isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), value)
        else:
            node[last] = value

    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        try:
            if kind == "add":
                add(path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op["value"]))
            elif kind in ("move", "copy"):
                value = remove(op["from"]) if kind == "move" else copy.deepcopy(get(op["from"]))
                add(path, value)
            elif kind == "test":
                if get(path) != op["value"]:
                    raise ValueError(f"test operation failed at {path}")
            else:
                raise ValueError(f"unknown json patch operation {kind!r}")
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"json patch {kind} {path}: missing path ({exc})") from exc
    return doc


def load_crds(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def crd_resource(crd: Obj) -> Resource:
    spec, names = crd["spec"], crd["spec"]["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    served.sort(key=lambda v: not v.get("storage", False))  # storage version first
    return Resource(
        group=spec["group"],
        versions=tuple(v["name"] for v in served),
        plural=names["plural"],
        kind=names["kind"],
        namespaced=spec.get("scope") == "Namespaced",
        status=any("status" in (v.get("subresources") or {}) for v in served),
        singular=names.get("singular", ""),
        short_names=tuple(names.get("shortNames", [])),
    )


@dataclass
class Event:
    rv: int
    type: str
    plural: str
    obj: Obj


def _secret_data(obj: Obj) -> None:
    """Secrets: the server folds write-only stringData into base64 data."""
    if obj.get("kind") == "Secret":
        strings = obj.pop("stringData", None) or {}
        obj.setdefault("type", "Opaque")
        data = obj.get("data") or {}
        data |= {k: base64.b64encode(v.encode()).decode() for k, v in strings.items()}
        if data:
            obj["data"] = data


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _comparable(obj: Obj) -> Obj:
    skip = ("managedFields", "resourceVersion")
    return obj | {"metadata": {k: v for k, v in obj["metadata"].items() if k not in skip}}


class Store:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.resources: dict[str, Resource] = {}
        self.objects: dict[Key, Obj] = {}
        self.history: list[Event] = []
        self.rv = 0
        self.oldest_rv = 0  # watches may start at any rv >= this (raised by compact())
        self.drop_gen = 0  # bumped by drop_watches(); open watches notice and hang up
        self.closed = False
        self.watchers = 0

    def register(self, res: Resource) -> None:
        self.resources[res.plural] = res

    # ---- reads ---------------------------------------------------------------------------
    def get(self, res: Resource, ns: str, name: str) -> Obj:
        with self.cond:
            obj = self.objects.get((res.plural, ns, name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def list(self, res: Resource, ns: str | None, match: Any = None) -> tuple[list[Obj], int]:
        with self.cond:
            items = [
                copy.deepcopy(o)
                for (plural, ons, _), o in sorted(self.objects.items())
                if plural == res.plural and (ns is None or ons == ns) and (not match or match(o))
            ]
            return items, self.rv

    def events_after(self, rv: int) -> Iterator[Event]:
        # Caller holds the lock. History is ordered by rv; small enough to scan from the end.
        i = len(self.history)
        while i > 0 and self.history[i - 1].rv > rv:
            i -= 1
        return iter(self.history[i:])

    # ---- writes --------------------------------------------------------------------------
    def _commit(self, res: Resource, obj: Obj, etype: str, dry_run: bool = False) -> Obj:
        """Bump the global resourceVersion, store or drop the object, and fan out the event."""
        meta = obj["metadata"]
        key = (res.plural, meta.get("namespace", ""), meta["name"])
        if dry_run:
            return copy.deepcopy(obj)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        if etype == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.history.append(Event(self.rv, etype, res.plural, copy.deepcopy(obj)))
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def create(
        self,
        res: Resource,
        ns: str,
        obj: Obj,
        manager: str,
        *,
        dry_run: bool = False,
        op: str = "Update",
    ) -> Obj:
        with self.cond:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if not meta.get("name"):
                raise invalid(
                    res, "", "metadata.name", "Required value: name or generateName is required"
                )
            name = meta["name"]
            if meta.get("resourceVersion"):  # the storage layer's plain error: a 500
                raise ApiError(
                    500, "", "resourceVersion should not be set on objects to be created"
                )
            if (res.plural, ns, name) in self.objects:
                details = {"name": name, "group": res.group, "kind": res.plural}
                raise ApiError(409, "AlreadyExists", f'{res.gr} "{name}" already exists', details)
            if res.namespaced:
                meta["namespace"] = ns
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
            for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
                meta.pop(k, None)
            if res.status and res.custom:
                obj.pop("status", None)  # the status subresource owns it: create drops it
            obj["apiVersion"], obj["kind"] = res.api_version(), res.kind
            _secret_data(obj)
            record_manager(obj, manager, op, res)
            return self._commit(res, obj, "ADDED", dry_run)

    def update(
        self,
        res: Resource,
        ns: str,
        name: str,
        new: Obj,
        manager: str,
        *,
        subresource: str = "",
        operation: str = "Update",
        check_rv: bool = True,
        dry_run: bool = False,
    ) -> Obj:
        """Replace an existing object (PUT, or the result of a PATCH) like the real registry."""
        with self.cond:
            old = self.objects.get((res.plural, ns, name))
            if old is None:
                raise not_found(res, name)
            meta = new.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the name of the object ({meta['name']}) does not match the name on the URL "
                    f"({name})",
                )
            sent_rv = meta.get("resourceVersion")
            if check_rv and not sent_rv and res.custom:
                raise invalid(
                    res,
                    name,
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                why = "the object has been modified; please apply your changes to the latest "
                raise conflict(res, name, why + "version and try again")
            if subresource == "status":
                obj = copy.deepcopy(old)
                obj["status"] = copy.deepcopy(new.get("status"))
                if obj["status"] is None:
                    del obj["status"]
            else:
                obj = copy.deepcopy(new)
                if res.status:  # main-resource writes never change status
                    obj.pop("status", None)
                    if "status" in old:
                        obj["status"] = copy.deepcopy(old["status"])
                obj["metadata"] = dict(obj["metadata"])
                kept = ("uid", "creationTimestamp", "generation", "deletionTimestamp")
                for k in (*kept, "deletionGracePeriodSeconds"):
                    if k in old["metadata"]:
                        obj["metadata"][k] = old["metadata"][k]
                obj["metadata"]["managedFields"] = copy.deepcopy(
                    old["metadata"].get("managedFields", [])
                )
                obj["metadata"]["name"] = name
                if res.namespaced:
                    obj["metadata"]["namespace"] = ns
                if _spec_part(obj) != _spec_part(old):
                    obj["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            obj["apiVersion"], obj["kind"] = res.api_version(), res.kind
            _secret_data(obj)
            if _comparable(obj) == _comparable(old):
                return copy.deepcopy(old)  # a no-op write does not bump resourceVersion
            record_manager(obj, manager, operation, res, subresource)
            if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
                return self._commit(res, obj, "DELETED", dry_run)
            return self._commit(res, obj, "MODIFIED", dry_run)

    def delete(self, res: Resource, ns: str, name: str, preconditions: Obj, dry_run: bool) -> Obj:
        with self.cond:
            old = self.objects.get((res.plural, ns, name))
            if old is None:
                raise not_found(res, name)
            for field in ("uid", "resourceVersion"):
                want = preconditions.get(field)
                have = old["metadata"].get(field)
                if want and want != have:
                    why = f"Precondition failed: {field}: {want}, {field} in object meta: {have}"
                    raise conflict(res, name, why)
            obj = copy.deepcopy(old)
            if obj["metadata"].get("finalizers"):  # finalizers hold the object until removed
                if obj["metadata"].get("deletionTimestamp"):
                    return obj
                obj["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
                return self._commit(res, obj, "MODIFIED", dry_run)
            return self._commit(res, obj, "DELETED", dry_run)

    def compact(self) -> None:
        with self.cond:
            self.history.clear()
            self.oldest_rv = self.rv


def record_manager(obj: Obj, manager: str, operation: str, res: Resource, sub: str = "") -> None:
    """Keep one managedFields entry per (manager, operation, subresource), like the server."""
    entries = [
        e
        for e in obj["metadata"].get("managedFields", [])
        if (e.get("manager"), e.get("operation"), e.get("subresource", ""))
        != (manager, operation, sub)
    ]
    entry: Obj = {
        "manager": manager,
        "operation": operation,
        "apiVersion": res.api_version(),
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    }
    if sub:
        entry["subresource"] = sub
    obj["metadata"]["managedFields"] = [*entries, entry]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
