"""`kubectl longhorn-bi store ...`: work on a Longhorn backupstore directly."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import click

from longhorn_bi.engine.errors import IntegrityError, InvalidInput
from longhorn_bi.plugin.progress import progress_bar

if TYPE_CHECKING:
    from longhorn_bi.engine.store.drivers.base import StoreDriver

OUTPUT = click.option(
    "-o",
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format: text, or json (one JSON object).",
)
MOUNT_POINT = click.option(
    "--mount-point",
    type=click.Path(file_okay=False),
    default=None,
    help="nfs:// and cifs:// only: where the share is already mounted (no mount is "
    "attempted; for cifs://server/share/path, where //server/share/path is mounted).",
)

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _options(mount_point: str | None) -> dict[str, str]:
    return {"mount_point": mount_point} if mount_point else {}


@contextlib.contextmanager
def _one_store(url: str, mount_point: str | None) -> Iterator[StoreDriver]:
    """One store for a command's size look-up and its work: a second S3 client cost 8 MiB
    of peak RSS and 0.1 s, a second NFS mount more."""
    from longhorn_bi.engine.backup_url import parse_backup_url
    from longhorn_bi.engine.store.drivers import open_store

    store = open_store(parse_backup_url(url).target, _options(mount_point))
    try:
        yield store
    finally:
        store.close()


def _emit(fmt: str, doc: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(doc, indent=None, sort_keys=False) if fmt == "json" else text)


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


@click.group()
def store() -> None:
    """Back up, restore, verify, list and delete backing image backups on a backupstore.

    Targets: vfs:///path (a local folder), s3://bucket@region/path/ (credentials from
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINTS, AWS_CERT, VIRTUAL_HOSTED_STYLE),
    azblob://container@core.windows.net/path/ (AZBLOB_ACCOUNT_NAME, AZBLOB_ACCOUNT_KEY,
    AZBLOB_ENDPOINT, AZBLOB_CERT), nfs://server:/export, cifs://server/share/path (over SMB
    without mounting, credentials from CIFS_USERNAME and CIFS_PASSWORD; ?cifsOptions=port=N
    for another port). The layout is Longhorn's own, so Longhorn restores these backups.
    """


def _parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--label {item!r} is not key=value", hint="e.g. --label team=infra")
        labels[key] = value
    return labels


@store.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--target", required=True, help="Backup target URL, e.g. s3://bucket@us-east-1/.")
@click.option("--name", required=True, help="Backing image name the backup is stored under.")
@click.option(
    "--compression",
    type=click.Choice(["lz4", "gzip", "none"]),
    default="lz4",
    show_default=True,
    help="Block compression (Longhorn's backup-compression-method).",
)
@click.option(
    "--concurrency", type=int, default=4, show_default=True, help="Upload workers (>= 1)."
)
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Label of the backup.")
@click.option(
    "--secret",
    default="",
    metavar="NAME",
    help="Encrypted image: its encryption Secret, recorded in the backup as Longhorn does.",
)
@click.option("--secret-namespace", default="", metavar="NS", help="The namespace of --secret.")
@MOUNT_POINT
@OUTPUT
def backup(
    *,
    file: str,
    target: str,
    name: str,
    compression: str,
    concurrency: int,
    labels: tuple[str, ...],
    secret: str,
    secret_namespace: str,
    mount_point: str | None,
    fmt: str,
) -> None:
    """Back up raw image FILE to TARGET in Longhorn's backing-image layout; print its URL.

    NAME must be one Longhorn can import: at most 63 lower-case letters, digits, '-' and
    '.', starting and ending with a letter or digit."""
    from longhorn_bi.engine.store.backup import backup_image

    size = os.path.getsize(file) if os.path.isfile(file) else None
    with progress_bar(size, "backup") as progress:
        result = backup_image(
            file,
            target,
            name,
            compression=compression,
            concurrency=concurrency,
            labels=_parse_labels(labels),
            secret=secret,
            secret_namespace=secret_namespace,
            store_options=_options(mount_point),
            progress=progress,
        )
    doc = {
        "url": result.url,
        "name": result.name,
        "size": result.size,
        "checksum": result.checksum,
        "compression": result.compression,
        "blocks": result.block_count,
        "newBlocks": result.new_blocks,
        "storedBytes": result.stored_bytes,
        "zeroBlocks": result.zero_blocks,
        "holeBytes": result.hole_bytes,
        "alreadyBackedUp": result.already,
    }
    if fmt == "text":
        if result.already:
            click.echo(
                f"{result.name}: a complete backup already exists; nothing uploaded", err=True
            )
        else:
            click.echo(
                f"{result.name}: {_size(result.size)}, {result.block_count} blocks, "
                f"{result.new_blocks} new ({_size(result.stored_bytes)} stored), "
                f"sha512 {result.checksum}",
                err=True,
            )
    _emit(fmt, doc, result.url)


@store.command()
@click.argument("url")
@click.option(
    "--output",
    "output_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="File to restore into.",
)
@click.option(
    "--concurrent-limit", type=int, default=4, show_default=True, help="Restore workers (>= 1)."
)
@click.option("--checksum", default=None, help="Expected SHA-512 (default: the backup's own).")
@click.option(
    "--verify-blocks",
    is_flag=True,
    help="Check every block against its name while restoring, as Longhorn does (by default "
    "only when no image SHA-512 is known; a mismatch then names the bad blocks).",
)
@MOUNT_POINT
@OUTPUT
def restore(
    *,
    url: str,
    output_file: str,
    concurrent_limit: int,
    checksum: str | None,
    verify_blocks: bool,
    mount_point: str | None,
    fmt: str,
) -> None:
    """Restore the backup at URL (TARGET?backingImage=NAME) into a file, checked by SHA-512."""
    from longhorn_bi.engine.store.admin import inspect_backup
    from longhorn_bi.engine.store.arena import use_one_arena
    from longhorn_bi.engine.store.restore import check_restore_args, restore_backup

    check_restore_args(concurrent_limit, checksum)
    use_one_arena()  # before any worker thread: peak RSS (engine/store/arena.py)
    with _one_store(url, mount_point) as store:
        info = inspect_backup(url, store=store)
        with progress_bar(info.size, "restore") as progress:
            result = restore_backup(
                url,
                output_file,
                concurrent_limit=concurrent_limit,
                checksum=checksum,
                store=store,
                progress=progress,
                verify_blocks=verify_blocks,
            )
    doc = {
        "url": result.url,
        "name": result.name,
        "output": result.output,
        "size": result.size,
        "checksum": result.checksum,
        "blocks": result.blocks,
    }
    _emit(
        fmt,
        doc,
        f"restored {result.name} to {result.output} "
        f"({_size(result.size)}, sha512 {result.checksum})",
    )


@store.command(name="ls")
@click.argument("target")
@MOUNT_POINT
@OUTPUT
def ls(target: str, mount_point: str | None, fmt: str) -> None:
    """List the backing image backups on TARGET."""
    from longhorn_bi.engine.store.admin import list_backups

    found = list_backups(target, store_options=_options(mount_point))
    lines = [f"{'NAME':<32} {'SIZE':>12} {'STATE':<11} {'COMPLETED':<21} URL"]
    for info in found:
        state = "complete" if info.complete else "in-progress"
        lines.append(
            f"{info.name:<32} {info.size:>12} {state:<11} {info.completed or '-':<21} {info.url}"
        )
    if not found:
        lines = [f"no backing image backups in {target}"]
    _emit(fmt, {"target": target, "backups": [i.as_dict() for i in found]}, "\n".join(lines))


@store.command()
@click.argument("url")
@MOUNT_POINT
@OUTPUT
def inspect(url: str, mount_point: str | None, fmt: str) -> None:
    """Show the recorded details of the backup at URL."""
    from longhorn_bi.engine.store.admin import inspect_backup

    info = inspect_backup(url, store_options=_options(mount_point))
    doc = info.as_dict()
    text = "\n".join(f"{key}: {value}" for key, value in doc.items())
    _emit(fmt, doc, text)


class ByteSize(click.ParamType[int, Any]):
    """A byte count: digits with an optional K, M, G, T (1000s) or Ki, Mi, Gi, Ti suffix."""

    name = "size"
    _UNITS: ClassVar[dict[str, int]] = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().removesuffix("b")
        binary = text.endswith("i")
        text = text.removesuffix("i")
        unit = text[-1:] if text[-1:].isalpha() else ""
        digits = text[: len(text) - len(unit)]
        if not digits.isdigit() or unit not in self._UNITS or (binary and not unit):
            self.fail(f"{value!r} is not a size such as 2Ti, 500G or 1099511627776", param, ctx)
        scale = 1024 ** "kmgt".index(unit) * 1024 if binary else self._UNITS[unit]
        return int(digits) * scale


@store.command()
@click.argument("url")
@click.option(
    "--concurrent-limit", type=int, default=4, show_default=True, help="Read workers (>= 1)."
)
@click.option(
    "--max-size",
    type=ByteSize(),
    default="1Ti",
    show_default=True,
    help="Refuse a backup whose recorded Size is larger (the work grows with Size).",
)
@MOUNT_POINT
@OUTPUT
def verify(
    url: str, concurrent_limit: int, max_size: int, mount_point: str | None, fmt: str
) -> None:
    """Read and check every block and the image SHA-512 of the backup at URL; write nothing."""
    from longhorn_bi.engine.store.admin import inspect_backup
    from longhorn_bi.engine.store.restore import check_restore_args
    from longhorn_bi.engine.store.verify import verify_backup

    check_restore_args(concurrent_limit, None)
    with _one_store(url, mount_point) as store:
        info = inspect_backup(url, store=store)
        with progress_bar(info.size, "verify") as progress:
            result = verify_backup(
                url,
                concurrent_limit=concurrent_limit,
                max_size=max_size,
                store=store,
                progress=progress,
            )
    doc = {
        "url": result.url,
        "name": result.name,
        "ok": result.ok,
        "size": result.size,
        "blocks": result.blocks,
        "checksum": result.checksum,
        "expectedChecksum": result.expected_checksum,
        "badBlocks": [
            {"offset": offset, "problem": problem} for offset, problem in result.bad_blocks
        ],
    }
    if result.ok:
        _emit(fmt, doc, f"OK: {result.name}, {result.blocks} blocks, sha512 {result.checksum}")
        return
    if fmt == "json":
        _emit(fmt, doc, "")
    if result.bad_blocks:
        shown = [str(offset) for offset, _ in result.bad_blocks[:20]]  # a line, not a page
        more = len(result.bad_blocks) - len(shown)
        offsets = ", ".join(shown) + (f" and {more} more" if more else "")
        details = "; ".join(problem for _, problem in result.bad_blocks[:5])
        raise IntegrityError(
            f"backup {result.name} has {len(result.bad_blocks)} bad block(s) "
            f"at offset(s) {offsets}: {details}",
            hint="back the image up again; the bad blocks cannot be restored",
        )
    raise IntegrityError(
        f"backup {result.name}: image SHA-512 {result.checksum} does not match the recorded "
        f"{result.expected_checksum}"
    )


@store.command()
@click.argument("url")
@MOUNT_POINT
@OUTPUT
def rm(url: str, mount_point: str | None, fmt: str) -> None:
    """Delete the backup at URL and collect blocks no other backup uses."""
    from longhorn_bi.engine.store.admin import remove_backup

    result = remove_backup(url, store_options=_options(mount_point))
    doc = {
        "url": result.url,
        "name": result.name,
        "deletedBlocks": result.deleted_blocks,
        "keptBlocks": result.kept_blocks,
        "gcSkipped": result.gc_skipped,
    }
    text = (
        f"removed {result.name}: {result.deleted_blocks} unreferenced blocks deleted, "
        f"{result.kept_blocks} kept"
    )
    if result.gc_skipped:
        text = f"removed {result.name}; blocks kept because {result.gc_skipped}"
    _emit(fmt, doc, text)
