"""The store and checksum verbs, run as the installed executable."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.reference_store import BLOCK, RefImage, make_sparse_file, write_reference_store

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "image.raw"
    content = make_sparse_file(path, 3 * BLOCK, {0: os.urandom(BLOCK), 2 * BLOCK: b"data" * 1024})
    return path, content


def test_backup_restore_verify_inspect_ls_rm(tmp_path, image) -> None:
    path, content = image
    target = f"vfs://{tmp_path / 'store'}"
    done = run(
        "store", "backup", str(path), "--target", target, "--name", "parrot", "--label", "a=b"
    )
    assert done.returncode == 0, done.stderr
    url = f"{target}?backingImage=parrot"
    assert done.stdout.strip() == url
    assert "Traceback" not in done.stderr

    again = run("store", "backup", str(path), "--target", target, "--name", "parrot", "-o", "json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["alreadyBackedUp"] is True

    inspect = json.loads(run("store", "inspect", url, "-o", "json").stdout)
    assert inspect["checksum"] == hashlib.sha512(content).hexdigest()
    assert inspect["labels"] == {"a": "b"} and inspect["complete"] is True

    listed = json.loads(run("store", "ls", target, "-o", "json").stdout)
    assert [b["name"] for b in listed["backups"]] == ["parrot"]
    assert "parrot" in run("store", "ls", target).stdout

    verified = run("store", "verify", url, "-o", "json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True

    out = tmp_path / "out.raw"
    restored = run(
        "store",
        "restore",
        url,
        "--output",
        str(out),
        "--concurrent-limit",
        "3",
        "--checksum",
        hashlib.sha512(content).hexdigest(),
        "-o",
        "json",
    )
    assert restored.returncode == 0, restored.stderr
    assert out.read_bytes() == content
    assert json.loads(restored.stdout)["output"] == str(out)

    removed = run("store", "rm", url, "-o", "json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["deletedBlocks"] == 2
    assert run("store", "ls", target, "-o", "json").stdout.count("parrot") == 0


def test_verify_names_the_bad_offset_and_exits_1(tmp_path) -> None:
    content = os.urandom(2 * BLOCK)
    write_reference_store(tmp_path / "s", [RefImage("img", content, [0, BLOCK])])
    name = hashlib.sha512(content[BLOCK:]).hexdigest()[:64]
    block = tmp_path / f"s/backupstore/backing-images/blocks/{name[:2]}/{name[2:4]}/{name}.blk"
    block.write_bytes(b"garbage")
    url = f"vfs://{tmp_path / 's'}?backingImage=img"
    done = run("store", "verify", url)
    assert done.returncode == 1
    assert f"offset(s) {BLOCK}" in done.stderr and "Traceback" not in done.stderr
    out = tmp_path / "out.raw"
    failed = run("store", "restore", url, "--output", str(out))
    assert failed.returncode == 1 and f"offset {BLOCK}" in failed.stderr
    assert not out.exists()
    checked = run("store", "restore", url, "--output", str(out), "--verify-blocks")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert f"offset {BLOCK}" in checked.stderr and "does not match its name" in checked.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["store", "backup", "IMG", "--target", "vfs://STORE", "--name", "../x"],
            "backing image name",
        ),
        (
            [
                "store",
                "backup",
                "IMG",
                "--target",
                "vfs://STORE",
                "--name",
                "ok",
                "--concurrency",
                "0",
            ],
            "--concurrency",
        ),
        (
            [
                "store",
                "backup",
                "IMG",
                "--target",
                "vfs://STORE",
                "--name",
                "ok",
                "--label",
                "novalue",
            ],
            "--label",
        ),
        (
            [
                "store",
                "restore",
                "vfs://STORE?backingImage=xx",
                "--output",
                "OUT",
                "--concurrent-limit",
                "0",
            ],
            "--concurrent-limit",
        ),
        (
            [
                "store",
                "restore",
                "vfs://STORE?backingImage=xx",
                "--output",
                "OUT",
                "--checksum",
                "abc",
            ],
            "--checksum",
        ),
        (["store", "ls", "cifs://server:4455/share/path"], "cifsOptions=port=N"),
        (
            ["store", "ls", "azblob://container@core.windows.net/p/"],
            "set both AZBLOB_ACCOUNT_NAME and AZBLOB_ACCOUNT_KEY",
        ),
        (["store", "ls", "azblob://c@core.windows.net/p/"], "invalid container name 'c'"),
        (["store", "ls", "vfs://STORE/../etc"], "'..'"),
        (["store", "inspect", "vfs://STORE"], "backingImage"),
        (["checksum", "ftp://host/file"], "unsupported URL scheme"),
        (["checksum", "MISSING"], "does not exist"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, image, args, needle) -> None:
    path, _ = image
    subst = {
        "IMG": str(path),
        "STORE": str(tmp_path / "store"),
        "OUT": str(tmp_path / "o.raw"),
        "MISSING": str(tmp_path / "missing"),
    }
    argv = []
    for arg in args:
        word = arg
        for key, value in subst.items():
            word = word.replace(key, value)
        argv.append(word)
    done = run(*argv)
    assert done.returncode != 0
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o.raw").exists()


def test_checksum_of_file_matches_hashlib(tmp_path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "f").write_bytes(data)
    done = run("checksum", str(tmp_path / "f"))
    assert done.returncode == 0 and done.stdout.strip() == hashlib.sha512(data).hexdigest()
    as_json = json.loads(run("checksum", str(tmp_path / "f"), "-o", "json").stdout)
    assert as_json["sha512"] == hashlib.sha512(data).hexdigest()


@pytest.mark.parametrize("verb", ["backup", "restore", "ls", "inspect", "verify", "rm"])
def test_every_store_verb_has_help(verb) -> None:
    done = run("store", verb, "--help")
    assert done.returncode == 0 and "-o, --format" in done.stdout


def test_help_does_not_import_boto3_or_tqdm() -> None:
    code = (
        "import sys\n"
        "from longhorn_bi.plugin.cli import main\n"
        "try:\n    main(['store', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'tqdm', 'lz4') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip().endswith("[]"), done.stdout


@pytest.fixture
def http_file(tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            return

    data = os.urandom(5 * 1024 * 1024 + 3)
    (tmp_path / "image.qcow2").write_bytes(data)
    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", data
    finally:
        server.shutdown()
        server.server_close()


def test_checksum_of_an_http_url_streams_the_download(http_file) -> None:
    base, data = http_file
    done = run("checksum", f"{base}/image.qcow2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == hashlib.sha512(data).hexdigest()
    missing = run("checksum", f"http://user:hunter2pass@{base[7:]}/nope.img")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    assert "hunter2pass" not in missing.stderr and "Traceback" not in missing.stderr


def test_progress_bar_only_when_stderr_is_a_terminal(tmp_path, image) -> None:
    import fcntl
    import pty
    import struct
    import termios

    path, _ = image
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        done = subprocess.run(
            [EXE, "checksum", str(path)],
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=60,
            check=False,
        )
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
    assert done.returncode == 0
    assert b"sha512" in seen and b"100%" in seen  # tqdm drew on the terminal
    quiet = run("checksum", str(path))
    assert quiet.stderr == ""
