"""One glibc malloc arena for the process, for a restore's worker threads.

glibc gives each thread that calls malloc an arena of its own (up to 8 per core) and keeps
freed blocks there for reuse by that thread. A restore's workers allocate 2 MiB blocks (a
decoded lz4 frame), so each worker's arena held a few blocks' worth of memory no other
thread could reuse: S3 restore at --concurrent-limit 4 peaked at 92-96 MiB with an arena per
thread and 82-84 MiB with one (moto, 512 MiB image), at the same CPU time; a vfs restore of
the realistic 1 GiB image at 62-63 MiB instead of 74-76, with fewer page faults (44-48k
against 80-108k); the random one did not change. Not for backup: there the one arena gives
its top back to the kernel after each block and faults it in again (360-370k page faults
against 16-18k, +0.3-0.5 CPU-s of system time per GiB of random image). Few allocations
are made per block (CPython's small objects come from its own allocator), so the one
arena's lock is not contended.
"""

from __future__ import annotations

import ctypes

from longhorn_bi.engine.store import direct_write

M_ARENA_MAX = -8  # glibc malloc.h


def use_one_arena() -> bool:
    """Ask glibc for one arena; False where the C library has no mallopt (musl)."""
    lib = direct_write.libc()
    mallopt = getattr(lib, "mallopt", None) if lib is not None else None
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, 1))
