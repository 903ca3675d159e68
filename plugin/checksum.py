"""`kubectl longhorn-bi checksum`: the SHA-512 for a BackingImage's spec.checksum."""

from __future__ import annotations

import json
import os

import click

from longhorn_bi.plugin.progress import progress_bar
from longhorn_bi.plugin.store import OUTPUT


@click.command()
@click.argument("source")
@OUTPUT
def checksum(source: str, fmt: str) -> None:
    """Streaming SHA-512 of a file or an http(s):// URL (for spec.checksum)."""
    from longhorn_bi.engine.store.checksum import sha512_of

    total = os.path.getsize(source) if os.path.isfile(source) else None
    with progress_bar(total, "sha512") as progress:
        digest = sha512_of(source, progress)
    if fmt == "json":
        click.echo(json.dumps({"source": source, "sha512": digest}))
    else:
        click.echo(digest)
