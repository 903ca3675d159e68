"""The plan of a `verify --in-cluster` Job as text: one file per index, the names one a line.

The plugin writes the files into a ConfigMap (one key per index) and the kubelet mounts it
into every pod; a pod reads its index's file. The first line says which shard of how many
and how many names follow, so that a shard with no backups (a valid no-op) differs from an
empty or cut-short file (refused: the pod would otherwise verify nothing and succeed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from longhorn_bi.engine.errors import InvalidInput

# Kubernetes refuses a ConfigMap whose data passes 1 MiB (MaxConfigMapSize in
# k8s.io/kubernetes pkg/apis/core/validation); keep room for the object's other fields.
MAX_PLAN_BYTES = 1024 * 1024 - 16 * 1024
_HEADER = re.compile(r"# longhorn-bi verify plan: shard (\d+) of (\d+), (\d+) backup\(s\)")
_HINT = "the plan is written by `kubectl longhorn-bi verify --in-cluster`: run that again"


def plan_text(index: int, shards: int, names: Sequence[str]) -> str:
    header = f"# longhorn-bi verify plan: shard {index} of {shards}, {len(names)} backup(s)"
    return "\n".join([header, *names]) + "\n"


def plan_data(plan: Sequence[Sequence[str]]) -> dict[str, str]:
    """The ConfigMap's data: key "<index>" holds that index's file."""
    data = {str(i): plan_text(i, len(plan), names) for i, names in enumerate(plan)}
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    if size > MAX_PLAN_BYTES:
        count = sum(len(names) for names in plan)
        raise InvalidInput(
            f"the plan of {count} backups takes {size} bytes, more than a ConfigMap holds",
            hint="verify fewer at once: --target NAME, or --sample-backups FRACTION",
        )
    return data


def parse_plan(text: str, index: int, source: str) -> list[str]:
    """The names in shard `index`'s file; InvalidInput naming `source` if it is not whole."""
    lines = text.splitlines()
    if not lines or not text.strip():
        raise InvalidInput(f"the plan file {source} is empty", hint=_HINT)
    header = _HEADER.fullmatch(lines[0].strip())
    if not header:
        raise InvalidInput(
            f"{source} is not a verify plan: its first line is {lines[0][:80]!r}", hint=_HINT
        )
    shard, shards, count = (int(g) for g in header.groups())
    if shard != index:
        raise InvalidInput(
            f"{source} is the plan of shard {shard} of {shards}, not of shard {index}",
            hint="mount the plan's ConfigMap whole: each index reads the key of its own number",
        )
    names = [line.strip() for line in lines[1:] if line.strip()]
    if len(names) != count:
        raise InvalidInput(
            f"{source} names {len(names)} backup(s), its first line says {count}: cut short?",
            hint=_HINT,
        )
    if len(set(names)) != len(names):
        raise InvalidInput(f"{source} names a backup twice", hint=_HINT)
    return names
