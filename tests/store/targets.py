"""What the driver contract suite is run against: one `<scheme>_store_target` fixture per driver.

Each driver's test-server module provides a fixture of that name which yields a StoreTarget;
the suite (test_driver_contract.py) asks for the fixtures by name, so a new driver plugs in
by adding its fixture name to STORE_TARGETS and importing the fixture in conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass(frozen=True)
class StoreTarget:
    """A backup target URL and the environment (Longhorn's secret keys) that opens it.

    `secrets`: values that must never appear in output or logs, at any log level (an access
    key id or account name is not one: it is in request URLs and signed headers); `endpoint_var`: the variable
    that holds the HTTP endpoint, for HTTP drivers, so that a test can put a fault-injecting
    proxy before the server ("" for drivers without one)."""

    url: str
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    endpoint_var: str = ""


@pytest.fixture
def vfs_store_target(tmp_path: Path) -> Iterator[StoreTarget]:
    yield StoreTarget(f"vfs://{tmp_path / 'vfs-store'}")
