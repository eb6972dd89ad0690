"""A PostgreSQL high-availability cluster on local ports, for the failover drill: one etcd and
three Patroni nodes (``deploy/patroni.yml`` with local addresses and short timings) in a
temporary folder, and the means to crash a node the way a machine dies.

PostgreSQL refuses to run as root, so when this runs as root every process of the cluster runs
as the ``postgres`` user (``KASSA_DRILL_USER`` names another), which owns the folder; as anyone
else they run as that user. Needs the Debian packages ``patroni`` and ``etcd-server`` and
PostgreSQL's binaries (``KASSA_PG_BIN``, default ``/usr/lib/postgresql/15/bin``); installs
nothing itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_CONFIG = ROOT / "deploy" / "patroni.yml"
PG_BIN = Path(
    os.environ.get("KASSA_PG_BIN")
    or os.environ.get("KASSA_TEST_PG_BIN")  # the name tests/test_outage.py reads
    or "/usr/lib/postgresql/15/bin"
)
PACKAGES = "patroni etcd-server postgresql-15"
T = TypeVar("T")


class ClusterError(Exception):
    """The cluster did not do what it was asked in time; the message says what and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_programs() -> list[str]:
    """What the drill needs and this machine lacks (each with the package that has it)."""
    wanted = {"patroni": "patroni", "etcd": "etcd-server"}
    missing = [f"{name} ({package})" for name, package in wanted.items() if not shutil.which(name)]
    if not (PG_BIN / "postgres").exists():
        missing.append(f"{PG_BIN / 'postgres'} (postgresql-15, or set KASSA_PG_BIN)")
    return missing


@dataclasses.dataclass(frozen=True)
class Timings:
    """Patroni's leader key: held for ``ttl`` s, renewed every ``loop_wait`` s, given up after
    ``retry_timeout`` s of failing to renew it (loop_wait + 2 x retry_timeout <= ttl)."""

    ttl: int = 10
    loop_wait: int = 2
    retry_timeout: int = 4


class Account:
    """Who the cluster's processes run as: ``postgres`` when this process is root."""

    def __init__(self) -> None:
        self.as_other = os.geteuid() == 0
        name = os.environ.get("KASSA_DRILL_USER", "postgres")
        try:
            self.entry = pwd.getpwnam(name) if self.as_other else pwd.getpwuid(os.geteuid())
        except KeyError as error:
            raise ClusterError(
                f"running as root, and there is no user {name!r} to run as"
            ) from error

    def own(self, path: Path) -> None:
        if self.as_other:
            os.chown(path, self.entry.pw_uid, self.entry.pw_gid)

    def start(self, command: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
        # A clean environment: Patroni is Debian's Python program and must not see this
        # process's virtual environment.
        env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
        with log.open("ab") as out:
            if self.as_other:
                return subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    user=self.entry.pw_uid,
                    group=self.entry.pw_gid,
                    extra_groups=[],
                )
            return subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def postmaster_pid(data_dir: Path) -> int | None:
    """The running postmaster of ``data_dir``, if any."""
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
    except OSError:
        return None
    return int(first) if first.strip().isdigit() and _alive(int(first)) else None


@dataclasses.dataclass(frozen=True)
class Crash:
    killed: int  # processes
    frozen_at: float  # time.monotonic() once every one of them was stopped: nothing they do after


def crash(data_dir: Path, others: Sequence[int] = ()) -> Crash:
    """SIGKILL the postmaster of ``data_dir``, every process under it and ``others``, all
    frozen first (SIGSTOP) so that none of them sees another die and reacts: as when the
    machine dies."""
    victims = list(others)
    postmaster = postmaster_pid(data_dir)
    locks = [data_dir / "postmaster.pid"]
    with contextlib.suppress(OSError, IndexError):
        # Its lines 4 and 5: the port and the folder of its Unix socket, locked too.
        lines = locks[0].read_text().splitlines()
        locks.append(Path(lines[4]) / f".s.PGSQL.{lines[3].strip()}.lock")
    if postmaster is not None:
        victims += [postmaster, *_children(postmaster)]
    frozen_at = 0.0
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        frozen_at = frozen_at or time.monotonic()
    # The dead are reaped by their parent, init for a postmaster: until then a zombie keeps
    # its pid, and a new postmaster would take the lock file's pid for a live one. A machine
    # that restarts has none left, so once they are all dead, a zombie's lock file goes.
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for processes to die, with a deadline
    if postmaster is not None and Path(f"/proc/{postmaster}").exists():
        for lock in locks:
            lock.unlink(missing_ok=True)
    return Crash(len(victims), frozen_at)


@dataclasses.dataclass
class Node:
    name: str
    folder: Path
    pg_port: int
    api_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.folder / "patroni.yml"

    @property
    def log_path(self) -> Path:
        return self.folder / "patroni.log"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def postmaster_pid(self) -> int | None:
        return postmaster_pid(self.folder / "data")

    def stall_replication(self) -> int:
        """Freeze (SIGSTOP) this leader's WAL senders: from now on it sends its replicas
        nothing. Returns how many were frozen."""
        postmaster = self.postmaster_pid()
        frozen = 0
        for pid in _children(postmaster) if postmaster is not None else []:
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"walsender" in title:
                os.kill(pid, signal.SIGSTOP)
                frozen += 1
        return frozen

    def crash(self) -> Crash:
        """SIGKILL Patroni and its PostgreSQL at once (see :func:`crash`)."""
        patroni = [self.process.pid] if self.process and self.process.poll() is None else []
        killed = crash(self.folder / "data", patroni)
        if self.process is not None:
            self.process.wait(timeout=30)
        return killed


@dataclasses.dataclass(frozen=True)
class Member:
    name: str
    role: str  # leader, sync_standby or replica
    state: str  # running, streaming, starting, ...
    lag: int | None


class Cluster:
    """etcd and three Patroni nodes in ``folder``; see the module's text."""

    def __init__(
        self, folder: Path, timings: Timings, config: Path = REFERENCE_CONFIG, nodes: int = 3
    ) -> None:
        self.folder = folder
        self.config = config
        dcs = yaml.safe_load(config.read_text())["bootstrap"]["dcs"]
        self.synchronous = bool(dcs.get("synchronous_mode"))
        self.timings = timings
        self.account = Account()
        self.account.own(folder)
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.etcd: subprocess.Popen[bytes] | None = None
        self.nodes = [
            Node(f"pg{n}", folder / f"pg{n}", free_port(), free_port()) for n in range(1, nodes + 1)
        ]

    def url(self, database: str) -> str:
        """The libpq-style multi-host URL that always reaches the leader."""
        hosts = ",".join(f"127.0.0.1:{node.pg_port}" for node in self.nodes)
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    # --- starting and stopping ----------------------------------------------------------------

    def start(self, deadline_s: float = 180) -> str:
        """Start etcd and the nodes; returns the leader's name once all three are in."""
        etcd_dir = self.folder / "etcd"
        etcd_dir.mkdir()
        self.account.own(etcd_dir)
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self.etcd = self.account.start(
            [
                "etcd",
                "--name",
                "drill",
                "--data-dir",
                str(etcd_dir / "data"),
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"drill={peer}",
                "--initial-cluster-state",
                "new",
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ],
            etcd_dir / "etcd.log",
            etcd_dir,
        )
        self._poll(lambda: self._etcd_healthy(client), "etcd to answer", 30)
        for node in self.nodes:
            node.folder.mkdir()
            self.account.own(node.folder)
            node.config_path.write_text(yaml.safe_dump(self._node_config(node)))
            self.account.own(node.config_path)
            self.start_node(node)
        return self.wait_healthy(deadline_s)

    def start_node(self, node: Node) -> None:
        node.process = self.account.start(
            ["patroni", str(node.config_path)], node.log_path, node.folder
        )

    def close(self, remove: bool = True) -> None:
        """Stop everything (Patroni stops its PostgreSQL) and remove the folder (unless not
        ``remove``: to read its logs)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.crash()
            if node.postmaster_pid() is not None:
                node.crash()
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.kill()
            self.etcd.wait()
        if remove:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _node_config(self, node: Node) -> dict[str, Any]:
        """The reference node's configuration with local addresses, folders and trust."""
        config: dict[str, Any] = yaml.safe_load(self.config.read_text())
        config["scope"] = "kassa-drill"
        config["name"] = node.name
        address = f"127.0.0.1:{node.api_port}"
        config["restapi"] = {"listen": address, "connect_address": address}
        config["etcd3"] = {"hosts": f"127.0.0.1:{self.etcd_port}"}
        dcs = config["bootstrap"]["dcs"]
        dcs.update(dataclasses.asdict(self.timings))
        dcs["postgresql"]["parameters"].update(max_connections=100, wal_keep_size="256MB")
        config["bootstrap"]["initdb"] = [{"encoding": "UTF8"}, "data-checksums", "no-sync"]
        postgresql = config["postgresql"]
        postgresql.update(
            listen=f"127.0.0.1:{node.pg_port}",
            connect_address=f"127.0.0.1:{node.pg_port}",
            data_dir=str(node.folder / "data"),
            bin_dir=str(PG_BIN),
            pgpass=str(node.folder / "pgpass"),
            pg_hba=[
                "local all all trust",
                "host replication replicator 127.0.0.1/32 trust",
                "host all all 127.0.0.1/32 trust",
            ],
            parameters={"unix_socket_directories": str(node.folder)},
        )
        config["watchdog"] = {"mode": "off"}  # no /dev/watchdog for a drill
        return config

    # --- what the cluster says ----------------------------------------------------------------

    def members(self) -> list[Member]:
        """The cluster as any live node's Patroni sees it (empty if none answers)."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                answer = httpx.get(f"{node.api}/cluster", timeout=2)
            except httpx.HTTPError:
                continue
            if answer.status_code == 200:
                return [
                    Member(m["name"], m["role"], m["state"], _lag(m.get("lag")))
                    for m in orjson.loads(answer.content)["members"]
                ]
        return []

    def leader(self) -> Node | None:
        names = [m.name for m in self.members() if m.role == "leader" and m.state == "running"]
        return next((node for node in self.nodes if node.name in names), None)

    def healthy(self) -> str | None:
        """The leader's name when every node is in: a running leader, a synchronous standby
        (in synchronous mode) and the other replica streaming, none lagging."""
        members = self.members()
        roles = sorted(m.role for m in members)
        wanted = ["leader", "replica", "sync_standby" if self.synchronous else "replica"]
        settled = all(m.state in ("running", "streaming") for m in members)
        caught_up = all(m.lag == 0 for m in members if m.role != "leader")
        if roles == sorted(wanted) and settled and caught_up:
            return next(m.name for m in members if m.role == "leader")
        return None

    def wait_healthy(self, deadline_s: float) -> str:
        standby = ", one of them a sync standby" if self.synchronous else ""
        return self._poll(self.healthy, f"all three nodes in{standby}", deadline_s)

    def wait_new_leader(self, old: str, deadline_s: float) -> str:
        def promoted() -> str | None:
            leader = self.leader()
            return leader.name if leader is not None and leader.name != old else None

        return self._poll(promoted, f"a leader other than {old}", deadline_s)

    def _poll(self, found: Callable[[], T | None], what: str, deadline_s: float) -> T:
        deadline = time.monotonic() + deadline_s
        while True:
            value = found()
            if value:
                return value
            if time.monotonic() > deadline:
                raise ClusterError(f"waited {deadline_s:.0f} s for {what}; logs in {self.folder}")
            time.sleep(0.1)  # polling other processes' state, with a deadline

    @staticmethod
    def _etcd_healthy(client: str) -> bool:
        try:
            return httpx.get(f"{client}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _lag(value: object) -> int | None:
    return value if isinstance(value, int) else None


@contextlib.contextmanager
def running_cluster(
    timings: Timings, config: Path = REFERENCE_CONFIG, keep: bool = False
) -> Iterator[Cluster]:
    """A started cluster in a fresh temporary folder, always stopped (and, unless ``keep``,
    removed) afterwards."""
    missing = missing_programs()
    if missing:
        raise ClusterError(f"missing: {', '.join(missing)}; apt-get install -y {PACKAGES}")
    folder = Path(tempfile.mkdtemp(prefix="kassa-drill-"))
    cluster = Cluster(folder, timings, config)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close(remove=not keep)
