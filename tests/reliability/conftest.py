"""Private servers for the fault tests: each test kills its own, never the machine's shared ones."""

import shutil
import socket
from collections.abc import Iterator

import pytest

from tests.servers import RedisServer, run_folder


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own (tests/servers.py), killed and restarted at will."""
    folder = run_folder()
    server = RedisServer(folder / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


class SilentServer:
    """Accepts connections and never answers: a hung Redis or broker."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self._kept: list[socket.socket] = []

    def accepted(self) -> int:
        """Connections made so far (each one taken off the backlog and kept open)."""
        self.listener.setblocking(False)
        count = 0
        while True:
            try:
                connection, _ = self.listener.accept()
            except BlockingIOError:
                return count
            self._kept.append(connection)
            count += 1

    def close(self) -> None:
        for connection in self._kept:
            connection.close()
        self.listener.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()
