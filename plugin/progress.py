"""A tqdm progress bar on standard error when it is a terminal; nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(total: int | None, description: str) -> Iterator[Callable[[int], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(
        total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr
    ) as bar:
        yield bar.update
