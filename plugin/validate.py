"""`validate` (offline GitOps check of manifest files) and `rules` (the catalogue)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from longhorn_bi.engine.documents import (
    SourceDocument,
    decode,
    expand_lists,
    iter_documents,
    with_krm_origin,
)
from longhorn_bi.engine.errors import ExitCode, InvalidInput, ManifestError
from longhorn_bi.engine.facts import ClusterFacts
from longhorn_bi.engine.rules import RULES
from longhorn_bi.engine.validation import Report, validate_documents
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.plugin.kube import connection_options
from longhorn_bi.plugin.options import (
    cluster_version,
    emit_json,
    longhorn_version_auto_option,
    namespace_option,
    offline_version,
)
from longhorn_bi.plugin.report_formats import RENDERERS

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 32 * 1024 * 1024
STDIN = "-"


def complete_paths(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Let the shell complete file and directory names."""
    return [CompletionItem(incomplete, type="file")]


def find_files(paths: tuple[str, ...]) -> list[str]:
    """Files to read, in a stable order; directories are searched recursively."""
    files: list[str] = []
    for given in paths:
        if given == STDIN:
            files.append(STDIN)
            continue
        path = Path(given)
        if path.is_dir():
            found = sorted(
                str(p)
                for p in path.rglob("*")
                if p.suffix.lower() in MANIFEST_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise InvalidInput(
                    f"{given}: no manifests in this directory",
                    hint=f"it holds no {', '.join(MANIFEST_SUFFIXES)} files; give the directory of your manifests",
                )
            files.extend(found)
        elif path.is_file():
            files.append(given)
        elif path.exists():
            raise InvalidInput(f"{given}: not a regular file or directory")
        else:
            raise InvalidInput(f"{given}: no such file or directory")
    return files


def read_source(name: str) -> bytes:
    """The bytes of a file or of standard input, refusing what is too large to be a manifest."""
    if name == STDIN:
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        try:
            if Path(name).stat().st_size > MAX_FILE_BYTES:
                data = b"x" * (MAX_FILE_BYTES + 1)
            else:
                data = Path(name).read_bytes()
        except OSError as exc:
            raise ManifestError(f"cannot read the file: {exc.strerror}", source=name) from None
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(
            f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; not read",
            source=name,
            hint="split it, or check that it is a manifest at all",
        )
    return data


def load_documents(files: list[str], report: Report, notes: list[str]) -> Iterator[SourceDocument]:
    """Documents of every file; a file that cannot be parsed becomes an error in `report`."""
    for name in files:
        source = "<stdin>" if name == STDIN else name
        try:
            documents = list(iter_documents(decode(read_source(name), source), source))
        except ManifestError as exc:
            exc.source = exc.source or source
            report.add_parse_error(exc)
            continue
        if not documents:
            notes.append(f"{source}: no documents (empty file), nothing to check")
        for document in documents:
            for item in expand_lists(document):
                yield with_krm_origin(item)


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH|-]...", shell_complete=complete_paths)
@click.option(
    "-o",
    "--output",
    type=click.Choice(sorted(RENDERERS)),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option(
    "--cluster",
    is_flag=True,
    help="Add the live facts of the cluster (targets, images, backups of the namespace).",
)
@click.option(
    "--krm",
    is_flag=True,
    help="Run as a KRM function (kustomize validators, kpt): read a ResourceList on standard "
    "input, write it back with results. Its functionConfig may set longhornVersion, strict "
    "and namespace.",
)
@namespace_option
@longhorn_version_auto_option
@connection_options
@click.pass_context
def validate(
    ctx: click.Context,
    /,
    paths: tuple[str, ...],
    output: str,
    strict: bool,
    cluster: bool,
    krm: bool,
    namespace: str,
    version: LonghornVersion | None,
    **connection: Any,
) -> None:
    """Check manifests, e.g. in a GitOps pipeline (offline, or with --cluster).

    PATH is a file, a directory (searched recursively for .yaml, .yml and .json) or '-' for
    standard input (also read when no PATH is given and input is piped). Facts are gathered
    across all documents: a BackupTarget or backup-target Setting in the set says whether a
    target is configured, and a BackingImage in the set exists.

    With --cluster the facts of the cluster's namespace are added (and win over the files'
    for objects of the same name), and the version is read from its CRDs unless given.

    Exit status: 0 no error, 1 an error (or a warning with --strict), an unreadable
    document or a cluster that cannot be read, 2 a usage error or a missing path.
    """
    if krm:
        run_krm(ctx, paths, cluster, strict, namespace, version)
    if not paths:
        if sys.stdin.isatty():
            raise click.UsageError("give a file, a directory or '-' for standard input")
        paths = (STDIN,)
    files = find_files(paths)
    facts: ClusterFacts | None = None
    if cluster:
        from longhorn_bi.plugin.cluster_facts import live_facts

        version, facts = live_facts(namespace, connection, cluster_version(ctx, version))
    report = Report()
    notes: list[str] = []
    validate_documents(
        load_documents(files, report, notes),
        version=offline_version(version, "--cluster"),
        namespace=namespace,
        cluster_facts=facts,
        report=report,
    )
    report.results.sort(key=lambda r: (r.file, r.line, r.column, r.rule))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if report.documents + report.skipped == 0 and not report.results:
        raise InvalidInput(
            "no manifests found in the given input", hint="give files that hold Kubernetes objects"
        )
    sys.stdout.write(RENDERERS[output](report))
    failed = report.errors > 0 or (strict and report.warnings > 0)
    raise click.exceptions.Exit(ExitCode.FAILURE if failed else ExitCode.OK)


def run_krm(
    ctx: click.Context,
    paths: tuple[str, ...],
    cluster: bool,
    strict: bool,
    namespace: str,
    version: LonghornVersion | None,
) -> None:
    """`validate --krm`: the KRM function; exits 1 when a result fails it."""
    from longhorn_bi.plugin.krm import FunctionOptions, run_function

    if paths or cluster or ctx.get_parameter_source("output") is not ParameterSource.DEFAULT:
        raise click.UsageError(
            "--krm reads a ResourceList on standard input and writes one: give no PATH, "
            "-o or --cluster"
        )
    if version is None:
        raise click.UsageError("--krm runs offline: give a version, not auto")
    run = run_function(read_source(STDIN), FunctionOptions(version, strict, namespace))
    sys.stdout.write(run.output)
    for line in run.log:
        click.echo(line, err=True)
    raise click.exceptions.Exit(ExitCode.FAILURE if run.failed else ExitCode.OK)


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
def rules(output: str) -> None:
    """List the rule catalogue: id, severity, kinds, title, documentation and the Longhorn
    source (files and version lines) each rule encodes."""
    if output == "json":
        emit_json(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "severity": str(r.severity),
                    "kinds": sorted(r.kinds),
                    "title": r.title,
                    "doc": r.doc,
                    "source": [
                        {"repo": c.repo, "path": c.path, "versions": c.versions} for c in r.source
                    ],
                    "policy": r.policy,
                }
                for r in RULES
            ]
        )
    elif output == "markdown":
        click.echo(rules_markdown())
    else:
        for r in RULES:
            click.echo(f"{r.id}  {r.severity:<7}  {r.name:<30}  {r.title}")


def rules_markdown() -> str:
    lines = [
        "| id | name | severity | kinds | what it checks | Longhorn source (versions) |",
        "|---|---|---|---|---|---|",
    ]
    for r in RULES:
        source = "<br>".join(
            f"{c.repo.removeprefix('longhorn/')} `{c.path}` ({c.versions})" for c in r.source
        )
        lines.append(
            f"| {r.id} | `{r.name}` | {r.severity} | {', '.join(sorted(r.kinds))} | {r.doc} "
            f"| {source} |"
        )
    return "\n".join(lines)
