"""One step of `make demo`: a command run through the real command line, shown as a user sees it.

Its own module because both demo.py and demo_store.py run steps, and demo.py runs the store
demo: the shared piece sits below both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def _command_prefix() -> list[str]:
    """`kubectl longhorn-bi` when kubectl is installed (it finds the plugin on PATH)."""
    if shutil.which("kubectl"):
        return ["kubectl", "longhorn-bi"]
    return [str(BIN / "kubectl-longhorn_bi")]


def step(title: str, *args: str, expect: int = 0) -> str:
    command = [*_command_prefix(), *args]
    shown = " ".join(["kubectl longhorn-bi", *args])
    print(f"\n== {title}\n$ {shown}", flush=True)
    # The venv's bin on PATH is how kubectl finds the plugin.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    sys.stdout.write(result.stdout)
    sys.stdout.write("".join(f"  (stderr) {line}\n" for line in result.stderr.splitlines()))
    print(f"[exit {result.returncode}]", flush=True)
    if result.returncode != expect:
        raise SystemExit(f"demo step failed: {shown} exited {result.returncode}, expected {expect}")
    return result.stdout
