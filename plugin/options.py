"""Options shared by several commands, and small output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from longhorn_bi.engine.errors import InvalidInput
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


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def emit_yaml(data: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
