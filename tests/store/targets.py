"""What a store test needs to reach one backup target: its URL and the environment
(Longhorn's credential keys) that goes with it. Fixtures of every driver yield one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreTarget:
    url: str
    env: dict[str, str]
