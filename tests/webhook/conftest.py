from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from longhorn_bi.webhook.app import Settings, create_app
from longhorn_bi.webhook.cli import cli
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.logging_json import JsonFormatter
from longhorn_bi.webhook.metrics import Metrics
from longhorn_bi.webhook.tls import ReloadingTLS
from tests.webhook.helpers import V112, ThreadedServer, cluster_facts


def make_certs(out: Path) -> Path:
    """ca.crt, tls.crt and tls.key made by `longhorn-bi-webhook certs`, valid for 127.0.0.1."""
    result = CliRunner().invoke(
        cli,
        [
            "certs",
            "--service",
            "longhorn-bi-webhook",
            "--namespace",
            "longhorn-system",
            "--out",
            str(out),
            "--extra-name",
            "127.0.0.1",
            "--extra-name",
            "localhost",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    return make_certs(tmp_path / "certs")


@pytest.fixture(scope="module")
def module_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"))


class LogCapture:
    """JSON log lines of the webhook logger, as the server writes them."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger(f"longhorn_bi.webhook.test{id(self)}")
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(JsonFormatter())
        self.logger.addHandler(handler)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    def records(self) -> list[dict[str, object]]:
        import json

        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]


@pytest.fixture
def logs() -> LogCapture:
    return LogCapture()


@pytest.fixture(scope="module")
def https_server(module_certs: Path) -> Iterator[ThreadedServer]:
    """The webhook app over real HTTPS with certificates made by `certs`, static facts."""
    tls = ReloadingTLS(module_certs / "tls.crt", module_certs / "tls.key")
    source = StaticFacts(V112, cluster_facts())
    with ThreadedServer(lambda: create_app(Settings(), source, Metrics()), tls.context) as server:
        yield server
