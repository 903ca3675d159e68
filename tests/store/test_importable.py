"""Only backups Longhorn can import are written, and they carry what Longhorn reads back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longhorn_bi.engine.names import importable_name_problem, name_problem
from tests.store.reference_store import BLOCK, make_sparse_file

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")
CFG = "backupstore/backing-images/backing-images/{}/backing-image.cfg"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("parrot_v1", "'_' is refused"),  # Longhorn reads it, never lists it
        ("parrot-", "ending with a letter or digit"),
        ("parrot.", "ending with a letter or digit"),
        ("a.-b", "every '.'"),
        ("a" * 64, "64 characters long"),
        ("Parrot", "lower-case"),
        ("p", "at least 2 characters"),
    ],
)
def test_backup_refuses_names_longhorn_cannot_import(tmp_path, name: str, reason: str) -> None:
    image = tmp_path / "image.raw"
    make_sparse_file(image, BLOCK, {0: b"x"})
    done = run("store", "backup", str(image), "--target", f"vfs://{tmp_path / 's'}", "--name", name)
    assert done.returncode == 2
    assert done.stderr.startswith("error: backing image name") and reason in done.stderr
    assert not (tmp_path / "s").exists()  # refused before the store was touched


def test_names_at_the_limits() -> None:
    assert importable_name_problem("a" * 63) is None
    assert importable_name_problem("ubuntu-22.04.img") is None
    # Backups named so by others stay readable: the reader's check is Longhorn's own.
    assert name_problem("parrot_v1") is None and name_problem("a" * 200) is None


def test_secret_is_recorded_in_the_complete_cfg_as_longhorn_does(tmp_path) -> None:
    image = tmp_path / "image.raw"
    make_sparse_file(image, BLOCK, {0: os.urandom(BLOCK)})
    store = tmp_path / "s"
    args = ["store", "backup", str(image), "--target", f"vfs://{store}", "--name", "enc"]
    done = run(*args, "--secret", "longhorn-crypto", "--secret-namespace", "longhorn-system")
    assert done.returncode == 0, done.stderr
    cfg = json.loads((store / CFG.format("enc")).read_text())
    assert (cfg["Secret"], cfg["SecretNamespace"]) == ("longhorn-crypto", "longhorn-system")
    assert list(cfg).index("Secret") == list(cfg).index("CompleteTime") + 1  # Go's field order
    shown = json.loads(
        run("store", "inspect", f"vfs://{store}?backingImage=enc", "-o", "json").stdout
    )
    assert (shown["secret"], shown["secretNamespace"]) == ("longhorn-crypto", "longhorn-system")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--secret", "crypto"], "go together"),
        (["--secret-namespace", "ns"], "go together"),
        (["--secret", "Crypto_Key", "--secret-namespace", "ns"], "secret name 'Crypto_Key'"),
        (["--secret", "crypto", "--secret-namespace", "a.b"], "namespace 'a.b'"),
    ],
)
def test_secret_flags_are_checked(tmp_path, flags: list[str], message: str) -> None:
    image = tmp_path / "image.raw"
    make_sparse_file(image, BLOCK, {0: b"x"})
    done = run(
        "store",
        "backup",
        str(image),
        "--target",
        f"vfs://{tmp_path / 's'}",
        "--name",
        "enc",
        *flags,
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr
