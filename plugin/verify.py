"""`kubectl longhorn-bi verify`: read back the cluster's backing image backups and check them.

From this machine (default), or as an Indexed Job in the cluster (--in-cluster); a pod of
that Job runs this same command, its shard given by JOB_COMPLETION_INDEX.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import click

from longhorn_bi import __version__
from longhorn_bi.engine.errors import ExitCode, InvalidInput
from longhorn_bi.engine.scrub.outcome import ERROR, FAILED, OK, SKIPPED, Outcome, metrics_text
from longhorn_bi.engine.scrub.shards import BlockSample, check_fraction
from longhorn_bi.plugin.cluster_cmds import PLURAL, human_size
from longhorn_bi.plugin.kube import Kube, connection_from, connection_options, name_completer
from longhorn_bi.plugin.options import namespace_option
from longhorn_bi.plugin.progress import progress_bar
from longhorn_bi.plugin.scrub_cluster import ClusterVerifier, planned, select, stored_size

# The chart's image (repository and appVersion): the README builds it.
DEFAULT_IMAGE = f"ghcr.io/longhorn-bi/longhorn-bi:{__version__}"


def write_textfile(path: str, outcomes: list[Outcome], namespace: str) -> None:
    """Replace the file at once, so that a collector never reads half of it."""
    folder = Path(path).parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".verify-", suffix=".prom.tmp")
    with os.fdopen(fd, "w") as out:
        out.write(metrics_text(outcomes, namespace))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def seed_for(
    seed: str | None, fraction: float, backup_fraction: float, shards: int, in_cluster: bool
) -> str:
    """The seed of this run's samples, told on stderr so that the run can be repeated (an
    --in-cluster run hands its own to every pod)."""
    if seed:
        return seed
    if backup_fraction < 1 and shards > 1 and not in_cluster:
        # Each shard would draw its own: they would not agree on which backups to verify.
        raise InvalidInput(
            "--sample-backups with --shards needs --seed",
            hint="give every shard the same --seed (verify --in-cluster does this itself)",
        )
    seed = secrets.token_hex(4)
    if fraction < 1 or backup_fraction < 1:
        click.echo(f"sampling with --seed {seed} (give it again to draw the same)", err=True)
    return seed


def report(outcomes: list[Outcome], fmt: str) -> None:
    if fmt == "json":
        docs = [
            {
                "backup": o.backup,
                "result": o.result,
                "reason": o.reason,
                "badOffsets": o.bad_offsets,
            }
            for o in outcomes
        ]
        click.echo(json.dumps({"results": docs}))
        return
    for o in outcomes:
        line = f"{o.result.upper() if o.result != OK else 'ok':<8}{o.backup}"
        click.echo(line + (f": {o.reason}" if o.reason else ""))
        if o.result == FAILED and o.bad_offsets:
            click.echo(f"        bad blocks at offsets {', '.join(map(str, o.bad_offsets))}")
    counts = {r: sum(o.result == r for o in outcomes) for r in (OK, FAILED, ERROR, SKIPPED)}
    total = human_size(sum(o.size for o in outcomes if o.result == OK))
    click.echo(
        f"{len(outcomes)} backup(s): {counts[OK]} ok ({total}), {counts[FAILED]} failed, "
        f"{counts[ERROR]} unreadable, {counts[SKIPPED]} skipped",
        err=True,
    )


@click.command()
@click.argument("backups", nargs=-1, shell_complete=name_completer(PLURAL))
@click.option("--all", "all_", is_flag=True, help="Verify every backup of the namespace.")
@click.option("--target", metavar="NAME", help="Only the backups of this BackupTarget.")
@click.option(
    "--sample",
    "fraction",
    type=float,
    default=1.0,
    show_default=True,
    metavar="FRACTION",
    help="Read about this fraction of each backup's blocks, drawn with --seed (0 < FRACTION "
    "<= 1); a sample cannot check the image's SHA-512.",
)
@click.option(
    "--sample-backups",
    "backup_fraction",
    type=float,
    default=1.0,
    show_default=True,
    metavar="FRACTION",
    help="Verify about this fraction of the backups, chosen with --seed.",
)
@click.option(
    "--seed",
    metavar="TEXT",
    help="Draws the samples; the same seed reads the same blocks (default: random, printed).",
)
@click.option("--shards", type=int, default=1, show_default=True, help="Split the work in N.")
@click.option(
    "--shard-index",
    type=int,
    default=0,
    envvar="JOB_COMPLETION_INDEX",
    help="This run's shard, 0..N-1 (an Indexed Job's pod takes JOB_COMPLETION_INDEX).",
)
@click.option(
    "--plan-dir",
    metavar="DIR",
    help="Verify the backups listed in DIR/<shard index> (the plan --in-cluster mounts).",
)
@click.option(
    "--in-cluster", is_flag=True, help="Run as a Kubernetes Indexed Job of --shards pods."
)
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="--in-cluster: image.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Block readers.")
@click.option("--textfile", metavar="PATH", help="Write Prometheus textfile metrics here.")
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Annotate each backup with the result (and an Event on failure).",
)
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text")
@namespace_option
@connection_options
def verify(
    *,
    backups: tuple[str, ...],
    all_: bool,
    target: str | None,
    fraction: float,
    backup_fraction: float,
    seed: str | None,
    shards: int,
    shard_index: int,
    plan_dir: str | None,
    in_cluster: bool,
    image: str,
    concurrency: int,
    textfile: str | None,
    record: bool,
    fmt: str,
    namespace: str,
    **connection: Any,
) -> None:
    """Read back backups where they are stored and check them: every block against its
    name, the image against the backup's checksum and that against status.checksum.

    Exits 1 naming each bad backup and block offset. Nothing is written to the store but
    Longhorn's own (read) lock, which keeps a deletion from removing blocks meanwhile."""
    check_fraction(fraction)
    check_fraction(backup_fraction, "--sample-backups")
    if plan_dir and (backups or all_ or target or backup_fraction < 1 or shards > 1 or in_cluster):
        raise InvalidInput(
            "--plan-dir names the backups itself",
            hint="give it without BACKUP..., --all, --target, --sample-backups, --shards "
            "and --in-cluster",
        )
    seed = seed_for(seed, fraction, backup_fraction, shards, in_cluster)
    kube = Kube(connection_from(namespace, connection))
    if in_cluster:
        from longhorn_bi.plugin.scrub_job import JobSpec, run_job

        spec = JobSpec(
            backups, all_, target, fraction, backup_fraction, seed, shards, image, concurrency
        )
        click.get_current_context().exit(run_job(kube, spec))
    if plan_dir:
        chosen, outcomes = planned(kube, plan_dir, shard_index)
    else:
        chosen, outcomes = (
            select(
                kube,
                backups,
                all_=all_,
                target=target,
                fraction=backup_fraction,
                seed=seed,
                shards=shards,
                index=shard_index,
            ),
            [],
        )
    pick = BlockSample(fraction, seed) if fraction < 1 else None
    verifier = ClusterVerifier(kube, concurrency=concurrency, record=record, pick=pick, seed=seed)
    with progress_bar(sum(stored_size(o) for o in chosen), "verify") as progress:
        for obj in chosen:
            outcomes.append(verifier.verify(obj, progress))
    if textfile:
        write_textfile(textfile, outcomes, namespace)
    report(outcomes, fmt)
    if any(o.result in (FAILED, ERROR) for o in outcomes):
        click.get_current_context().exit(ExitCode.FAILURE)
