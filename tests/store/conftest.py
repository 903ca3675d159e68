from __future__ import annotations

import pytest

from longhorn_bi.engine.store.locks import LockTimings
from tests.store.azurite_server import azblob_container, azblob_store_target, azurite_endpoint
from tests.store.cifs_server import cifs_store_target, samba_server
from tests.store.s3_server import moto_endpoint, s3_bucket, s3_store_target
from tests.store.targets import vfs_store_target

# fixtures shared by the store tests; each driver's `<scheme>_store_target` feeds the
# driver contract suite (test_driver_contract.py)
__all__ = [
    "azblob_container",
    "azblob_store_target",
    "azurite_endpoint",
    "cifs_store_target",
    "moto_endpoint",
    "s3_bucket",
    "s3_store_target",
    "samba_server",
    "vfs_store_target",
]


@pytest.fixture
def fast_locks() -> LockTimings:
    """Longhorn's lock protocol with short waits, so that tests stay quick."""
    return LockTimings(check_wait=0.05, check_interval=0.1, max_wait=3.0)
