"""The cifs:// driver against a real Samba server on 127.0.0.1 (tests/store/cifs_server.py),
and the same target through a folder standing in for Longhorn's mount of the share."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import pytest

from longhorn_bi.engine.backup_url import parse_target
from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, NotFound
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.drivers.cifs import CifsStore
from longhorn_bi.engine.store.drivers.mounted import MountedStore, split_mount_options
from longhorn_bi.engine.store.layout import BackingImageCfg, cfg_key
from longhorn_bi.engine.store.restore import restore_backup
from tests.store.cifs_server import USERNAME, SambaServer
from tests.store.reference_store import BLOCK, make_sparse_file
from tests.store.targets import StoreTarget
from tests.support import run_cli

_run = run_cli  # the installed plugin, as a user runs it


def _image(tmp_path: Path, blocks: int = 5) -> tuple[Path, bytes]:
    chunks = {i * BLOCK: os.urandom(BLOCK) for i in range(blocks) if i % 4 != 2}
    chunks[(blocks - 1) * BLOCK + 4096] = b"tail" * 1000  # a block that is mostly zeros
    path = tmp_path / "image.raw"
    return path, make_sparse_file(path, blocks * BLOCK, chunks)


def _local(samba_server: SambaServer, target: StoreTarget) -> Path:
    """The folder behind a cifs:// target of the test server."""
    path = parse_target(target.url).path.split("/", 2)[2]
    return samba_server.share_dir / path


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_driver_operations(cifs_store_target, samba_server) -> None:
    store = open_store(cifs_store_target.url)
    try:
        assert isinstance(store, CifsStore)
        assert store.url == cifs_store_target.url
        assert store.list("") == [] and store.walk("backupstore") == []
        store.write("backupstore/a/one.blk", b"1" * 5000, durable=False)
        store.write("backupstore/a/b/two.cfg", b"{}")
        store.write("backupstore/top", b"")
        assert store.read("backupstore/a/one.blk") == b"1" * 5000
        assert store.read("backupstore/top") == b""
        assert store.list("") == ["backupstore"]
        assert store.list("backupstore/") == ["a", "top"]
        assert store.list("backupstore/a") == ["b", "one.blk"]
        assert store.walk("backupstore") == ["a/b/two.cfg", "a/one.blk", "top"]
        assert store.exists("backupstore/a/one.blk")
        assert not store.exists("backupstore/a") and not store.exists("backupstore/none")
        assert store.size("backupstore/a/one.blk") == 5000
        local = _local(samba_server, cifs_store_target)
        assert store.mtime("backupstore/a/b/two.cfg") == pytest.approx(
            (local / "backupstore/a/b/two.cfg").stat().st_mtime, abs=0.01
        )
        buffer = bytearray(6000)
        assert store.read_into("backupstore/a/one.blk", buffer) == 5000
        assert buffer[:5000] == b"1" * 5000
        assert store.read_into("backupstore/a/one.blk", bytearray(10)) == -1
        # A write replaces the object whole and leaves no temporary file behind.
        store.write("backupstore/a/b/two.cfg", b'{"v": 2}')
        assert store.read("backupstore/a/b/two.cfg") == b'{"v": 2}'
        assert sorted(p.name for p in (local / "backupstore/a/b").iterdir()) == ["two.cfg"]
        # Temporary files of a writer elsewhere are not objects.
        (local / "backupstore/a/.tmp-1-abc").write_bytes(b"partial")
        assert store.list("backupstore/a") == ["b", "one.blk"]
        assert ".tmp-1-abc" not in " ".join(store.walk("backupstore"))
        with pytest.raises(NotFound):
            store.read("backupstore/none")
        with pytest.raises(NotFound):
            store.size("backupstore/none")
        with pytest.raises(BackupstoreError, match="invalid backupstore key"):
            store.read("../escape")
        store.delete("backupstore/none")  # a missing object is not an error
        store.delete("backupstore/a/b/two.cfg")
        assert not (local / "backupstore/a/b").exists()  # emptied folders go, as on vfs
        assert store.walk("backupstore") == ["a/one.blk", "top"]
        store.write("backupstore/a/b/again", b"x")  # and come back when written again
        assert store.read("backupstore/a/b/again") == b"x"
    finally:
        store.close()


def test_backup_verify_restore_round_trip_through_the_cli(tmp_path, cifs_store_target) -> None:
    image, content = _image(tmp_path)
    env, target = cifs_store_target.env, cifs_store_target.url
    done = _run("store", "backup", str(image), "--target", target, "--name", "parrot", env=env)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url == f"{target}&backingImage=parrot"
    verified = _run("store", "verify", url, "-o", "json", env=env)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    out = tmp_path / "out.raw"
    checksum = hashlib.sha512(content).hexdigest()
    restored = _run("store", "restore", url, "--output", str(out), "--checksum", checksum, env=env)
    assert restored.returncode == 0, restored.stderr
    assert out.read_bytes() == content
    listed = _run("store", "ls", target, "-o", "json", env=env)
    assert [b["name"] for b in json.loads(listed.stdout)["backups"]] == ["parrot"]
    removed = _run("store", "rm", url, "-o", "json", env=env)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["deletedBlocks"] == 4  # block 2 is a hole
    assert json.loads(_run("store", "ls", target, "-o", "json", env=env).stdout)["backups"] == []


def test_layout_is_byte_identical_to_vfs(tmp_path, cifs_store_target, samba_server) -> None:
    image, _ = _image(tmp_path, 6)
    vfs_root = tmp_path / "vfs"
    for target in (f"vfs://{vfs_root}", cifs_store_target.url):
        backup_image(image, target, "parrot", compression="gzip", labels={"k": "v"})
    vfs_tree = _tree(vfs_root)
    cifs_tree = _tree(_local(samba_server, cifs_store_target))
    assert sorted(vfs_tree) == sorted(cifs_tree)
    assert sum(name.endswith(".blk") for name in vfs_tree) == 5
    key = cfg_key("parrot")
    for name, data in vfs_tree.items():
        if name != key:
            assert cifs_tree[name] == data, name
    # The cfgs differ only in their times.
    vfs_cfg = json.loads(vfs_tree[key])
    cifs_cfg = json.loads(cifs_tree[key])
    for cfg in (vfs_cfg, cifs_cfg):
        assert BackingImageCfg.from_json(json.dumps(cfg).encode()).complete
        del cfg["CreatedTime"], cfg["CompleteTime"]
    assert vfs_cfg == cifs_cfg
    assert list(json.loads(cifs_tree[key])) == list(json.loads(vfs_tree[key]))


def test_hidden_share_with_a_dollar_sign(tmp_path, samba_server, monkeypatch) -> None:
    for name, value in samba_server.env.items():
        monkeypatch.setenv(name, value)
    image, content = _image(tmp_path, 2)
    target = samba_server.url("longhorn", share="hidden$")
    result = backup_image(image, target, "secret-image")
    assert (samba_server.hidden_dir / "longhorn" / cfg_key("secret-image")).is_file()
    out = tmp_path / "out.raw"
    restore_backup(result.url, out)
    assert out.read_bytes() == content


def test_wrong_password_is_a_clear_error_without_secrets(tmp_path, cifs_store_target) -> None:
    image, _ = _image(tmp_path, 1)
    wrong = {**cifs_store_target.env, "CIFS_PASSWORD": "Wrong-Pass-1234"}
    target = cifs_store_target.url
    runs = [
        _run("store", "backup", str(image), "--target", target, "--name", "parrot", env=wrong),
        _run("store", "ls", target, "-o", "json", env=wrong),
        _run("--debug", "store", "ls", target, env=wrong),
    ]
    for done in runs:
        assert done.returncode == 1
        assert "CIFS logon to 127.0.0.1" in done.stderr and "CIFS_PASSWORD" in done.stderr
        assert "Traceback" not in done.stderr or done.args[1] == "--debug"
        for secret in ("Wrong-Pass-1234", cifs_store_target.env["CIFS_PASSWORD"], USERNAME):
            assert secret not in done.stdout and secret not in done.stderr


def test_credentials_never_reach_the_logs(tmp_path, cifs_store_target, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    image, content = _image(tmp_path, 2)
    result = backup_image(image, cifs_store_target.url, "parrot")
    restore_backup(result.url, tmp_path / "out.raw")
    assert (tmp_path / "out.raw").read_bytes() == content
    smb_records = [r for r in caplog.records if r.name.startswith("smbprotocol")]
    assert any("Session" in r.getMessage() for r in smb_records)  # smbprotocol did log
    assert cifs_store_target.env["CIFS_PASSWORD"] not in caplog.text
    assert USERNAME not in caplog.text


@pytest.mark.parametrize(
    ("url", "error", "needle"),
    [
        ("cifs://127.0.0.1:4455/backups/x", InvalidInput, "cifsOptions=port=N"),
        ("cifs://127.0.0.1/backups/x?cifsOptions=port=http", InvalidInput, "port number"),
        ("cifs://127.0.0.1/no-such-share/x?cifsOptions=port=PORT", BackupstoreError, "share"),
        ("cifs://127.0.0.1/backups/x?cifsOptions=soft,port=1", BackupstoreError, "connect"),
    ],
)
def test_bad_targets_are_clear_errors(samba_server, monkeypatch, url, error, needle) -> None:
    for name, value in samba_server.env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(error, match=needle) as caught:
        open_store(url.replace("PORT", str(samba_server.port)))
    assert samba_server.password not in str(caught.value)


# smbclient warns, when it collects them, about handles whose connection died under them
# (inside smbclient.replace and scandir too): nothing is left to close. The warnings are
# collected here, not in a later test.
@pytest.mark.filterwarnings("ignore:unclosed SMB handle:ResourceWarning")
def test_a_dropped_connection_is_retried_on_a_new_one(
    tmp_path, cifs_store_target, samba_server
) -> None:
    store = open_store(cifs_store_target.url)
    try:
        store.write("backupstore/one", b"1")
        assert samba_server.drop_connections() >= 1  # the server side of ours goes away
        store.write("backupstore/two", b"2")
        assert store.walk("backupstore") == ["one", "two"]
        assert samba_server.drop_connections() >= 1
        assert store.read("backupstore/one") == b"1"
    finally:
        store.close()
    # A whole backup and restore survive it too: drop every connection while it runs.
    image, content = _image(tmp_path, 8)
    stop = threading.Event()
    dropped: list[int] = []

    def dropper() -> None:
        while len(dropped) < 4 and not stop.wait(0.5):
            dropped.append(samba_server.drop_connections())

    store = open_store(cifs_store_target.url)
    assert isinstance(store, CifsStore)
    store.op_timeout = 5.0  # a request lost with its connection is given up on sooner
    thread = threading.Thread(target=dropper)
    thread.start()
    try:
        result = backup_image(image, store.url, "parrot", concurrency=3, store=store)
        restore_backup(result.url, tmp_path / "out.raw", concurrent_limit=3, store=store)
    finally:
        stop.set()
        thread.join()
        store.close()
    assert sum(dropped) > 0
    assert (tmp_path / "out.raw").read_bytes() == content
    gc.collect()


def test_through_a_mount_point_as_longhorn_does(tmp_path) -> None:
    mount = tmp_path / "mnt"  # stands in for //server/share/path mounted here
    mount.mkdir()
    image, content = _image(tmp_path, 3)
    env = {"CIFS_USERNAME": "", "CIFS_PASSWORD": ""}  # the mount carries the credentials
    target = "cifs://fileserver.example.com/backups/longhorn"
    mount_opt = ("--mount-point", str(mount))
    done = _run(
        "store", "backup", str(image), "--target", target, "--name", "parrot", *mount_opt, env=env
    )
    assert done.returncode == 0, done.stderr
    assert (mount / cfg_key("parrot")).is_file()
    url = f"{target}?backingImage=parrot"
    out = tmp_path / "out.raw"
    restored = _run("store", "restore", url, "--output", str(out), *mount_opt, env=env)
    assert restored.returncode == 0, restored.stderr
    assert out.read_bytes() == content
    listed = _run("store", "ls", target, *mount_opt, "-o", "json", env=env)
    assert [b["name"] for b in json.loads(listed.stdout)["backups"]] == ["parrot"]
    store = open_store(target, {"mount_point": str(mount)})
    assert isinstance(store, MountedStore) and store.local_listing is False
    missing = _run("store", "ls", target, "--mount-point", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2
    assert "mount -t cifs" in missing.stderr and "//fileserver.example.com/backups/longhorn" in (
        missing.stderr
    )


def test_without_credentials_the_error_names_the_variables(samba_server, monkeypatch) -> None:
    monkeypatch.delenv("CIFS_USERNAME", raising=False)
    monkeypatch.delenv("CIFS_PASSWORD", raising=False)
    with pytest.raises(BackupstoreError, match=r"CIFS logon to 127\.0\.0\.1") as caught:
        open_store(samba_server.url("x"))
    assert "CIFS_USERNAME is empty" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("", None),
        ("?cifsOptions=soft,port=4455", ["soft", "port=4455"]),
        # several parameters: one option each, not split again (util.SplitMountOptions)
        ("?cifsOptions=soft&cifsOptions=vers=3.0,seal", ["soft", "vers=3.0,seal"]),
    ],
)
def test_mount_options_are_split_as_longhorn_splits_them(query, options) -> None:
    target = parse_target(f"cifs://server/share/path{query}")
    assert split_mount_options(target, "cifsOptions") == options
