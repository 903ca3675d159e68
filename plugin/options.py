"""Options shared by several commands, and small output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from longhorn_bi.engine.errors import InvalidInput
from longhorn_bi.engine.rules import Severity, Violation
from longhorn_bi.engine.rules.base import LONGHORN_NAMESPACE
from longhorn_bi.engine.versions import DEFAULT_VERSION, SUPPORTED_VERSIONS, LonghornVersion

F = TypeVar("F", bound=Callable[..., Any])


def _parse_version(ctx: click.Context, param: click.Parameter, value: str) -> LonghornVersion:
    try:
        return LonghornVersion.parse(value)
    except InvalidInput as exc:
        raise click.BadParameter(f"{exc.message.split(': ', 1)[-1]} ({exc.hint})") from None


def longhorn_version_option(function: F) -> F:
    return click.option(
        "--longhorn-version",
        "version",
        default=str(DEFAULT_VERSION),
        show_default=True,
        envvar="LONGHORN_BI_LONGHORN_VERSION",
        metavar="VERSION",
        callback=_parse_version,
        help=f"Longhorn version whose CRDs and rules apply ({SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}).",
    )(function)


AUTO_VERSION = "auto"


def _parse_version_or_auto(
    ctx: click.Context, param: click.Parameter, value: str
) -> LonghornVersion | None:
    if value.strip().lower() == AUTO_VERSION:
        return None
    return _parse_version(ctx, param, value)


def longhorn_version_auto_option(function: F) -> F:
    """--longhorn-version for commands that may talk to a cluster: `auto` reads its CRDs."""
    return click.option(
        "--longhorn-version",
        "version",
        default=str(DEFAULT_VERSION),
        show_default=True,
        envvar="LONGHORN_BI_LONGHORN_VERSION",
        metavar="VERSION|auto",
        callback=_parse_version_or_auto,
        help=f"Longhorn version whose CRDs and rules apply ({SUPPORTED_VERSIONS[0]} to "
        f"{SUPPORTED_VERSIONS[-1]}), or auto: read from the cluster's CRDs (what a cluster "
        "command does unless a version is given).",
    )(function)


def cluster_version(ctx: click.Context, version: LonghornVersion | None) -> LonghornVersion | None:
    """The version a cluster command uses; None: detect it from the cluster's CRDs.

    A version the user did not give is detected rather than defaulted, so that a 1.6
    cluster gets 1.6 manifests and rules.
    """
    given = ctx.get_parameter_source("version") is not ParameterSource.DEFAULT
    return version if given else None


def offline_version(version: LonghornVersion | None, flag: str) -> LonghornVersion:
    """The version an offline command uses; `auto` needs a cluster."""
    if version is None:
        raise click.UsageError(
            f"--longhorn-version auto reads the cluster's CRDs: add {flag}, or give a version "
            f"such as {DEFAULT_VERSION}"
        )
    return version


def namespace_option(function: F) -> F:
    return click.option(
        "-n",
        "--namespace",
        default=LONGHORN_NAMESPACE,
        show_default=True,
        envvar="LONGHORN_BI_NAMESPACE",
        help="The Longhorn namespace.",
    )(function)


def parse_labels(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE, e.g. --label usecase=test")
        labels[key] = value
    return labels


def report_violations(violations: list[Violation]) -> bool:
    """Print violations to standard error, one a line; whether any is an error."""
    for violation in violations:
        click.echo(
            f"{violation.severity}: [{violation.rule}] {violation.path_str}: {violation.message}",
            err=True,
        )
    return any(v.severity is Severity.ERROR for v in violations)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def emit_yaml(data: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
