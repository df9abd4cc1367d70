"""Private, throwaway servers for the tests, never the machine's: a PostgreSQL cluster and a Redis,
each on a free loopback port, in a folder of its own under var/test/servers.

`make test` runs each pytest pass through `python -m tests.servers`. It first makes sure the
packages the suite needs are installed (as root on Debian/Ubuntu it installs them with apt-get;
otherwise it stops with one line naming them). With `--servers` it then starts a cluster and a
Redis, hands the command their URLs (DATABASE_URL, CELERY_BROKER_URL) and stops both when the
command ends, fails or is interrupted. The reliability tests start, kill and restart their own
servers with the same classes.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "var" / "test" / "servers"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# initdb and postgres refuse to run as root; Debian's postgresql package creates this user.
UNPRIVILEGED = "postgres"
# What the suite's own environment must not hand down: the passes say which servers they use.
SERVER_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")


class Missing(RuntimeError):
    """Something the tests need is not installed; the message says what to install."""


class ServerFailed(RuntimeError):
    """A server did not start or stop; the message carries its output."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerFailed(f"the server for 127.0.0.1:{port} exited ({process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def postgres_bin() -> Path | None:
    """The newest server's tools; Debian keeps them off PATH, in /usr/lib/postgresql/<v>/bin."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4])
    )
    initdb = found[-1] if found else shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def packages_missing() -> list[str]:
    """Debian's names of the packages the suite needs and this machine lacks."""
    present = {
        "postgresql": postgres_bin() is not None,
        "redis-server": shutil.which("redis-server") is not None,
        "chromium": shutil.which(CHROMIUM) is not None,
    }
    return [package for package, found in present.items() if not found]


def packages_ensure() -> None:
    """Install what is missing as root on Debian/Ubuntu; anywhere else name it and stop."""
    missing = packages_missing()
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"tests/servers: installing Debian's {' '.join(missing)}", flush=True)
        wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq", *wait_for_lock], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *wait_for_lock, *missing],
            check=True, env=apt_env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        missing = packages_missing()
    if missing:
        raise Missing(
            f"the tests need Debian's {', '.join(missing)}, missing here (Chromium is looked "
            f"for at {CHROMIUM}): sudo apt-get install {' '.join(missing)}"
        )


def _as_unprivileged() -> list[str]:
    """The prefix that runs PostgreSQL's tools: as root, as the `postgres` user (via runuser)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise Missing(
            "initdb refuses to run as root: install util-linux (runuser) or run as a user"
        )
    try:
        pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        raise Missing(
            f"initdb refuses to run as root and there is no `{UNPRIVILEGED}` user to run it as: "
            "install Debian's postgresql package or run the tests as a user"
        ) from None
    return ["runuser", "-u", UNPRIVILEGED, "--"]


def servers_base() -> Path:
    """var/test/servers; as root, a folder in the system's temporary directory instead when the
    `postgres` user cannot reach into the checkout (a clone under /root, say)."""
    SERVERS.mkdir(parents=True, exist_ok=True)
    prefix = _as_unprivileged()
    if prefix and subprocess.run([*prefix, "test", "-x", str(SERVERS)]).returncode != 0:
        base = Path(tempfile.gettempdir()) / "microscope-test-servers"
        base.mkdir(mode=0o755, exist_ok=True)
        return base
    return SERVERS


def run_folder() -> Path:
    """A new folder for this process's servers. Folders whose owner died without cleaning up
    (kill -9) are swept first: their servers stopped, the folders removed."""
    base = servers_base()
    for stale in base.glob("run-*"):
        try:
            owner = (stale / "owner").read_text()
        except FileNotFoundError:  # a run being set up, or swept by another one just now
            continue
        if owner.isdigit() and not _alive(int(owner)):
            _sweep(stale)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    folder.chmod(0o755)  # the `postgres` user that serves root's cluster must get in
    (folder / "owner").write_text(str(os.getpid()))
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(folder: Path) -> None:
    pg_bin = postgres_bin()
    for data in folder.glob("*/postmaster.pid"):
        if pg_bin is not None:
            stop = [str(pg_bin / "pg_ctl"), "-D", str(data.parent), "-m", "immediate", "stop"]
            subprocess.run([*_as_unprivileged(), *stop], capture_output=True)
    for pidfile in folder.glob("*/redis.pid"):
        # Gone meanwhile (another run swept it) or the pid now someone else's: leave it.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            pid = int(pidfile.read_text())
            if b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


class PostgresCluster:
    """A throwaway cluster (trust auth, user `postgres`, no fsync) in `data`, served on a free
    loopback port and no Unix socket, so it shares nothing with the machine's server."""

    def __init__(self, data: Path) -> None:
        pg_bin = postgres_bin()
        if pg_bin is None or not (pg_bin / "pg_ctl").exists():
            raise Missing(
                "PostgreSQL's server (initdb, pg_ctl) is not installed: apt-get install postgresql"
            )
        self.bin = pg_bin
        self.data = data
        self.port = free_port()
        self._prefix = _as_unprivileged()
        data.mkdir(mode=0o700)
        if self._prefix:
            shutil.chown(data, UNPRIVILEGED, UNPRIVILEGED)
        self._run(
            "initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def url(self, database: str = "microscope") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._prefix, str(self.bin / tool), *args], capture_output=True, text=True
        )
        if done.returncode != 0:
            log = self.data / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ServerFailed(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}{tail}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.data / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def serve(self, attempts: int = 3) -> None:
        """Start on a free port, another one if that was taken meanwhile."""
        for attempt in range(attempts):
            try:
                return self.start()
            except ServerFailed:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def createdb(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)


class RedisServer:
    """A redis-server of our own on a free loopback port, no persistence; start, kill, start."""

    def __init__(self, folder: Path) -> None:
        found = shutil.which("redis-server")
        if found is None:
            raise Missing("redis-server is not installed: apt-get install redis-server")
        self.bin = found
        self.folder = folder
        folder.mkdir(exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        assert self.process is None, "already running"
        # A session of its own: a terminal's Ctrl-C reaches the tests, and we stop the server.
        self.process = subprocess.Popen(
            [self.bin, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        (self.folder / "redis.pid").write_text(str(self.process.pid))
        try:
            wait_for_port(self.port, process=self.process)
        except ServerFailed:
            self.process = None
            raise

    def serve(self, attempts: int = 3) -> None:
        """Start on a free port, another one if that was taken meanwhile."""
        for attempt in range(attempts):
            try:
                return self.start()
            except ServerFailed:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()

    def kill(self) -> None:
        """SIGKILL: a crash, not a clean shutdown."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def llen(self, key: str, db: int = 0) -> int:
        import redis

        client = redis.Redis.from_url(self.url(db))
        try:
            return int(client.llen(key))
        finally:
            client.close()


@contextlib.contextmanager
def private_servers() -> Iterator[tuple[PostgresCluster, RedisServer]]:
    """A started cluster (with an empty database `microscope`) and Redis; both stopped and their
    folder removed afterwards, whatever happened in between."""
    folder = run_folder()
    cluster: PostgresCluster | None = None
    redis: RedisServer | None = None
    try:
        cluster = PostgresCluster(folder / "pg")
        cluster.serve()
        cluster.createdb("microscope")
        redis = RedisServer(folder / "redis")
        redis.serve()
        yield cluster, redis
    finally:
        if redis is not None:
            redis.kill()  # nothing to keep: it has no persistence
        if cluster is not None:
            cluster.stop()
        # Not if a server would not stop: the next run sweeps the folder and stops it then.
        shutil.rmtree(folder, ignore_errors=True)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(command: Sequence[str], env: dict[str, str]) -> int:
    child = subprocess.Popen(list(command), env=env)
    # A terminal's Ctrl-C reaches the command itself (one process group); TERM and HUP are
    # passed on. Either way the servers are stopped once the command has ended.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda received, frame: child.send_signal(received))
    code = child.wait()
    return code if code >= 0 else 128 - code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers",
        description="Check the test suite's packages, then run a command (a pytest pass).",
    )
    parser.add_argument(
        "--servers",
        action="store_true",
        help="run it against a private PostgreSQL cluster and Redis (DATABASE_URL, "
        "CELERY_BROKER_URL), stopped afterwards",
    )
    parser.add_argument("command", nargs="+", help="the command, after --")
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # while servers start: clean up, then stop
        signal.signal(signum, _interrupted)
    env = {name: value for name, value in os.environ.items() if name not in SERVER_VARIABLES}
    try:
        packages_ensure()
        if not args.servers:
            return _run(args.command, env)
        with private_servers() as (cluster, redis):
            print(
                f"tests/servers: PostgreSQL at {cluster.url()} (data in {cluster.data}), "
                f"Redis at {redis.url()}; both stop when the command ends",
                flush=True,
            )
            urls = {"DATABASE_URL": cluster.url(), "CELERY_BROKER_URL": redis.url()}
            return _run(args.command, {**env, **urls})
    except (Missing, ServerFailed) as error:
        print(f"tests/servers: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
