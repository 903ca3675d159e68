"""pytest fixtures for the fake API server (registered for the suite in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import FakeKubeServer, crd_file, volume_crd_file, write_kubeconfig


@pytest.fixture
def fake_kube() -> Iterator[FakeKubeServer]:
    """A started fake API server with the Longhorn v1.12 CRDs (and Volume's); stopped at
    teardown."""
    with FakeKubeServer(crds=(crd_file("1.12"), volume_crd_file("1.12"))) as server:
        yield server


@pytest.fixture
def fake_kubeconfig(fake_kube: FakeKubeServer, tmp_path: Path) -> Path:
    """A kubeconfig file (context "fake", namespace longhorn-system) pointing at fake_kube."""
    return write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url, token=fake_kube.token)
