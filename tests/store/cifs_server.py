"""CIFS for the tests: a real Samba server (Debian's `samba` package) on 127.0.0.1.

Everything it uses is private to one temporary folder: smb.conf, the lock, state, cache and
pid folders, the password database (tdbsam) with one user, and two shares: `backups` and the
hidden share `hidden$`. Only smbd runs (no nmbd, no winbind), on a free port. Without smbd
the tests skip on a developer's machine and fail in CI (CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.store.targets import StoreTarget

USERNAME = "lhbi-cifs"  # mapped to the local user that runs smbd (smbpasswd needs one)
SHARE = "backups"
HIDDEN_SHARE = "hidden$"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class SambaServer:
    port: int
    password: str
    share_dir: Path  # the folder behind \\127.0.0.1\backups
    hidden_dir: Path  # the folder behind \\127.0.0.1\hidden$
    pid: int  # the parent smbd; it forks one process per client connection

    def drop_connections(self) -> int:
        """Kill the smbd processes that serve a client connection (not its helpers, notifyd
        and cleanupd), as a server restart or a network reset ends them. Returns how many."""
        sockets = _established_sockets(self.port)
        killed = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or _parent(int(entry)) != self.pid:
                continue
            with contextlib.suppress(OSError):
                fds = os.listdir(f"/proc/{entry}/fd")
                links = {os.readlink(f"/proc/{entry}/fd/{fd}") for fd in fds}
                if links & sockets:
                    os.kill(int(entry), signal.SIGKILL)
                    killed += 1
        return killed

    @property
    def env(self) -> dict[str, str]:
        return {"CIFS_USERNAME": USERNAME, "CIFS_PASSWORD": self.password}

    def url(self, path: str, share: str = SHARE) -> str:
        return f"cifs://127.0.0.1/{share}/{path}?cifsOptions=port={self.port}"


def _established_sockets(port: int) -> set[str]:
    """`socket:[inode]` of every established TCP connection to 127.0.0.1:port."""
    found = set()
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == "01":
                found.add(f"socket:[{fields[9]}]")
    return found


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(base: Path, port: int) -> str:
    folders = {
        name: base / name for name in ("lock", "state", "cache", "pid", "private", "ncalrpc")
    }
    for folder in folders.values():
        folder.mkdir()
    for share in (SHARE, "hidden"):
        (base / share).mkdir()
    (base / "users.map").write_text(f"{pwd.getpwuid(os.geteuid()).pw_name} = {USERNAME}\n")
    return f"""[global]
  server role = standalone server
  netbios name = LHBITEST
  disable netbios = yes
  smb ports = {port}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  lock directory = {folders["lock"]}
  state directory = {folders["state"]}
  cache directory = {folders["cache"]}
  pid directory = {folders["pid"]}
  private dir = {folders["private"]}
  ncalrpc dir = {folders["ncalrpc"]}
  log file = {base}/log.%m
  passdb backend = tdbsam:{base}/passdb.tdb
  username map = {base}/users.map
  server min protocol = SMB2_10
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
[{SHARE}]
  path = {base / SHARE}
  read only = no
[{HIDDEN_SHARE}]
  path = {base / "hidden"}
  read only = no
  browseable = no
"""


class SambaUnavailable(Exception):
    """smbd cannot run here (not installed, or not root)."""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"smbd exited with {process.returncode} at start:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"smbd did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f} s")


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop smbd and the children it forked per connection: its own process group, which
    it leads (started by us in a new session), by that id."""
    if process.stdin:
        process.stdin.close()  # smbd -F also ends when its standard input closes
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children still serving a connection


@contextlib.contextmanager
def run_samba(base: Path) -> Iterator[SambaServer]:
    """smbd serving two shares of the empty folder `base`, until the block ends."""
    smbd, smbpasswd = _tool("smbd"), _tool("smbpasswd")
    if smbd is None or smbpasswd is None:
        raise SambaUnavailable("smbd or smbpasswd is not installed")
    if os.geteuid() != 0:
        raise SambaUnavailable("smbd needs root to serve files as the logged-on user")
    port = _free_port()
    conf = base / "smb.conf"
    conf.write_text(_config(base, port))
    password = "Cifs-" + secrets.token_urlsafe(12)
    user = pwd.getpwuid(os.geteuid()).pw_name
    subprocess.run(
        [smbpasswd, "-c", str(conf), "-a", "-s", user],
        input=f"{password}\n{password}\n".encode(),
        capture_output=True,
        check=True,
        timeout=30,
    )
    log = base / "smbd.out"
    with open(log, "wb") as out:
        # smbd -F ends when its standard input closes: a pipe that stays open until _stop.
        # Its own session: when smbd stops it signals its whole process group (kill(0, ...)),
        # which must not be pytest's.
        process = subprocess.Popen(
            [smbd, "-F", "--no-process-group", "--debug-stdout", "-s", str(conf)],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, process, log)
        yield SambaServer(port, password, base / SHARE, base / "hidden", process.pid)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def samba_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaServer]:
    """Samba on 127.0.0.1 for the whole session. Absent: CI (CI=true) fails, where .ci/run
    installs it; a developer's machine skips."""
    try:
        with run_samba(tmp_path_factory.mktemp("samba")) as server:
            yield server
    except SambaUnavailable as exc:
        message = f"{exc}: the CIFS tests need Samba as root (apt-get install -y samba)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


_folders = itertools.count(1)


@pytest.fixture
def cifs_store_target(samba_server: SambaServer, monkeypatch: pytest.MonkeyPatch) -> StoreTarget:
    """A fresh, not yet existing folder of the Samba share as a cifs:// target, with
    Longhorn's credential keys; the environment carries them too (as for s3_bucket)."""
    target = StoreTarget(
        samba_server.url(f"store-{next(_folders)}"),
        samba_server.env,
        secrets=(samba_server.env["CIFS_PASSWORD"],),
    )
    for name, value in target.env.items():
        monkeypatch.setenv(name, value)
    return target
