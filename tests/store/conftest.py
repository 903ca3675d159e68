from __future__ import annotations

import pytest

from longhorn_bi.engine.store.locks import LockTimings
from tests.store.cifs_server import cifs_store_target, samba_server
from tests.store.s3_server import moto_endpoint, s3_bucket

# fixtures shared by the store tests
__all__ = ["cifs_store_target", "moto_endpoint", "s3_bucket", "samba_server"]


@pytest.fixture
def fast_locks() -> LockTimings:
    """Longhorn's lock protocol with short waits, so that tests stay quick."""
    return LockTimings(check_wait=0.05, check_interval=0.1, max_wait=3.0)
