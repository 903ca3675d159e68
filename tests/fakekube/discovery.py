"""Discovery documents (/version, /api, /apis, group and group-version resource lists)."""

from __future__ import annotations

from collections.abc import Iterable

from .store import Obj, Resource

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _group(name: str, resources: list[Resource]) -> Obj:
    versions = list(dict.fromkeys(v for r in resources for v in r.versions))
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def _resource_list(group: str, version: str, served: list[Resource]) -> Obj:
    listed: list[Obj] = []
    for r in served:
        entry: Obj = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced}
        entry |= {"kind": r.kind, "verbs": VERBS}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        listed.append(entry)
        if r.status:
            verbs = ["get", "patch", "update"]
            listed.append(
                entry | {"name": f"{r.plural}/status", "singularName": "", "verbs": verbs}
            )
            listed[-1].pop("shortNames", None)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": listed}


def discovery(parts: list[str], resources: Iterable[Resource], host: str, git: str) -> Obj | None:
    """The document for a discovery path (split on "/"), or None when it is not one."""
    groups: dict[str, list[Resource]] = {}
    for r in resources:
        groups.setdefault(r.group, []).append(r)
    if parts == ["version"]:
        major, minor = git.lstrip("v").split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": git,
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.23.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
    if parts == ["api"]:
        cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs}
    if parts == ["apis"]:
        listed = [_group(g, rs) for g, rs in sorted(groups.items()) if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": listed}
    if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
        return {"kind": "APIGroup", "apiVersion": "v1"} | _group(parts[1], groups[parts[1]])
    if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) == 3):
        group = "" if parts[0] == "api" else parts[1]
        served = [r for r in groups.get(group, []) if parts[-1] in r.versions]
        return _resource_list(group, parts[-1], served) if served else None
    return None
