"""Benchmark images: "realistic" (25% random, 25% text, 50% zeros, mixed per MiB) and random."""

from __future__ import annotations

import os
import random
from pathlib import Path

MIB = 1024 * 1024
WORK = Path(os.environ.get("LONGHORN_BI_BENCH_DIR", "bench-work")).resolve()
_WORDS = (  # noqa: SIM905 (a sentence reads better than a list)
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there would their we him been has when who will "
    "config kernel module service restart volume replica snapshot backup restore image node "
    "error warning info debug timeout request response client server cluster storage disk"
).split()


def _text_chunk(rng: random.Random) -> bytes:
    out = bytearray()
    while len(out) < MIB:
        line = " ".join(rng.choices(_WORDS, k=rng.randint(4, 14)))
        out += f"{rng.randint(0, 99999):05d} {line}\n".encode()
    return bytes(out[:MIB])


def make_image(kind: str, size_mib: int) -> Path:
    """Create (once) and return an image of `size_mib` MiB: kind 'realistic' or 'random'."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{kind}-{size_mib}M.img"
    if path.exists() and path.stat().st_size == size_mib * MIB:
        return path
    rng = random.Random(42)
    zeros = bytes(MIB)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as out:
        for _ in range(size_mib):
            if kind == "random":
                out.write(os.urandom(MIB))
                continue
            pick = rng.random()
            if pick < 0.25:
                out.write(os.urandom(MIB))
            elif pick < 0.5:
                out.write(_text_chunk(rng))
            else:
                out.write(zeros)  # written zeros, not holes: every byte is read
    tmp.rename(path)
    return path
