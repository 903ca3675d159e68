"""Peak RSS of `store restore` and `store verify` on hostile backupstores, against a valid
backup of the same shape and against the bound they must keep (200 MiB).

    python -m benchmarks.bench_hostile_store [--bomb-mib 512]

Each case is a vfs:// store with one backup whose cfg or block is crafted: an absurd Size,
decompression bombs (lz4 as Longhorn writes it, lz4 with linked blocks and block checksums,
gzip; a 512 MiB lz4 bomb is larger than any stored block, so 256 MiB ones test the decoder), a 4 GiB file where a block belongs, a 1 GiB cfg, a deeply nested cfg, and the largest
cfg that is accepted (16 MiB, some 160 000 block entries). Every command must fail cleanly
(exit 1 or 2) except the valid one.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lz4.frame

from benchmarks.bench_data import WORK
from benchmarks.measure import drop

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")
BLOCK = 2 << 20
LIMIT_MIB = 200
BASE = "backupstore/backing-images"


# Linux carries a parent's RSS high-water mark into a forked child (and through exec), so
# this process, which built the bombs, would inflate every figure: a small Python process
# forks the command and reports the command's own peak.
_REPORTER = (
    "import os, sys, time; start = time.perf_counter(); "
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, "
    "file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), "
    "(os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]); "
    "_, status, usage = os.wait4(pid, 0); "
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, time.perf_counter() - start)"
)


def run(argv: list[str], ok: tuple[int, ...]) -> tuple[float, float]:
    """The command's peak RSS (MiB) and wall time; RuntimeError unless it exits with `ok`."""
    done = subprocess.run(
        [sys.executable, "-c", _REPORTER, *argv], capture_output=True, text=True, check=True
    )
    code, rss, seconds = done.stdout.split()
    if int(code) not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {code}")
    return float(rss), float(seconds)


def _write_store(root: Path, size: int, blocks: dict[int, tuple[str, bytes]], **cfg: object) -> str:
    drop(root)
    for name, payload in blocks.values():
        path = root / BASE / "blocks" / name[0:2] / name[2:4] / f"{name}.blk"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
    doc: dict[str, object] = {
        "Name": "hostile",
        "Size": str(size),
        "BlockCount": str(len(blocks)),
        "Checksum": "",
        "Labels": None,
        "CompressionMethod": "lz4",
        "CreatedTime": "2025-01-02T03:04:05Z",
        "CompleteTime": "2025-01-02T03:04:09Z",
        "Secret": "",
        "SecretNamespace": "",
        "ProcessingBlocks": {"Blocks": {}},
        "Blocks": [{"Offset": o, "BlockChecksum": n} for o, (n, _) in sorted(blocks.items())],
    }
    doc.update(cfg)
    folder = root / BASE / "backing-images" / "hostile"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "backing-image.cfg").write_text(json.dumps(doc))
    return f"vfs://{root}?backingImage=hostile"


def _cfg_path(root: Path) -> Path:
    return root / BASE / "backing-images" / "hostile" / "backing-image.cfg"


def _bomb(kind: str, mib: int) -> tuple[str, bytes]:
    zeros = bytes(mib << 20)
    name = hashlib.sha512(zeros).hexdigest()[:64]
    if kind == "gzip":
        return name, gzip.compress(zeros, compresslevel=9, mtime=0)
    linked = kind == "lz4-linked"
    frame = lz4.frame.compress(zeros, block_linked=linked, block_checksum=linked, store_size=False)
    return name, frame


def _valid(root: Path, mib: int) -> str:
    blocks = {}
    for index in range(mib // 2):
        data = hashlib.shake_256(index.to_bytes(4, "little")).digest(BLOCK)
        name = hashlib.sha512(data).hexdigest()[:64]
        blocks[index * BLOCK] = (name, lz4.frame.compress(data, store_size=False))
    image = b"".join(
        hashlib.shake_256(i.to_bytes(4, "little")).digest(BLOCK) for i in range(mib // 2)
    )
    return _write_store(root, mib << 20, blocks, Checksum=hashlib.sha512(image).hexdigest())


def _largest_cfg(root: Path) -> str:
    count = 150_000  # 16 MiB of cfg is the limit
    names = [hashlib.sha512(i.to_bytes(4, "little")).hexdigest()[:64] for i in range(count)]
    url = _write_store(root, count * BLOCK, {})
    doc = json.loads(_cfg_path(root).read_text())
    doc["Blocks"] = [{"Offset": i * BLOCK, "BlockChecksum": n} for i, n in enumerate(names)]
    _cfg_path(root).write_text(json.dumps(doc, separators=(",", ":")))
    return url


def _grown(root: Path, bytes_: int, what: str) -> str:
    name = hashlib.sha512(b"x").hexdigest()[:64]
    url = _write_store(root, BLOCK, {0: (name, b"x")})
    path = _cfg_path(root) if what == "cfg" else next((root / BASE / "blocks").rglob("*.blk"))
    with open(path, "r+b") as handle:
        handle.truncate(bytes_)  # sparse: costs no disk
    return url


def cases(work: Path, bomb_mib: int) -> dict[str, Callable[[Path], str]]:
    def bomb(kind: str, mib: int = bomb_mib) -> Callable[[Path], str]:
        return lambda root: _write_store(root, BLOCK, {0: _bomb(kind, mib)})

    return {
        "valid-64MiB": lambda root: _valid(root, 64),
        "absurd-size": lambda root: _write_store(root, (1 << 63) - 1, {}),
        f"lz4-bomb-{bomb_mib}MiB": bomb("lz4"),
        f"lz4-linked-bomb-{bomb_mib}MiB": bomb("lz4-linked"),
        # LZ4 expands at most some 255 times: a bomb that fits in a block's read limit
        "lz4-bomb-256MiB": bomb("lz4", 256),
        "lz4-linked-bomb-256MiB": bomb("lz4-linked", 256),
        f"gzip-bomb-{bomb_mib}MiB": bomb("gzip"),
        "4GiB-file-as-block": lambda root: _grown(root, 4 << 30, "block"),
        "1GiB-cfg": lambda root: _grown(root, 1 << 30, "cfg"),
        "nested-cfg": lambda root: _write_store(root, BLOCK, {}) and _nested(root),
        "largest-accepted-cfg": _largest_cfg,
    }


def _nested(root: Path) -> str:
    _cfg_path(root).write_bytes(b"[" * 1_000_000)
    return f"vfs://{root}?backingImage=hostile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bomb-mib", type=int, default=512)
    args = parser.parse_args()
    work = WORK / "hostile"
    work.mkdir(parents=True, exist_ok=True)
    for name, build in cases(work, args.bomb_mib).items():
        root = work / name
        url = build(root)
        ok = (0,) if name.startswith("valid") else (1, 2)
        out = work / "out.img"
        restore, restore_s = run([EXE, "store", "restore", url, "--output", str(out)], ok=ok)
        verify, verify_s = run([EXE, "store", "verify", url], ok=ok)
        drop(out)
        said = subprocess.run(
            [EXE, "store", "verify", url], capture_output=True, text=True, check=False
        )
        worst = max(restore, verify)
        print(
            f"{name:<28} restore peak_rss={restore:.0f}MiB seconds={restore_s:.2f}  "
            f"verify peak_rss={verify:.0f}MiB seconds={verify_s:.2f}  limit={LIMIT_MIB}MiB "
            f"{'OK' if worst < LIMIT_MIB else 'OVER'}\n    verify: {(said.stderr or said.stdout).strip()[:150]}",
            flush=True,
        )
        drop(root)


if __name__ == "__main__":
    main()
