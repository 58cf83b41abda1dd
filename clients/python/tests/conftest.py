"""Fixtures: real botbusd processes, and clients connected to them.

The daemon is the one ``BOTBUSD`` names (ctest sets it to the build's), else
the repository's ``build/daemon/botbusd``; without either the tests that
need it are skipped. A failing test's report carries the daemons' logs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from botbus import Client, CurveKeys
from botbusd_process import Daemon, find_program

# Long enough for a loaded CI machine; a test that expects no answer passes
# a short timeout of its own.
REPLY_TIMEOUT = 10.0

StartDaemon = Callable[..., Daemon]
Connect = Callable[..., Client]


@pytest.fixture(scope="session")
def botbusd_program() -> Path:
    program = find_program("BOTBUSD", "build/daemon/botbusd")
    if program is None:
        pytest.skip("no botbusd: set BOTBUSD to the daemon, or build it (build/daemon/botbusd)")
    return program


@pytest.fixture(scope="session")
def botbus_cli() -> Path:
    program = find_program("BOTBUS_CLI", "build/daemon/botbus")
    if program is None:
        pytest.skip("no botbus CLI: set BOTBUS_CLI to it, or build it (build/daemon/botbus)")
    return program


@pytest.fixture
def start_daemon(botbusd_program: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StartDaemon]:
    """Starts a botbusd with extra arguments; every one is stopped (and must
    exit cleanly) when the test ends."""
    daemons: list[Daemon] = []
    request.node.botbus_daemons = daemons
    numbers = itertools.count(1)

    def start(*extra_args: str) -> Daemon:
        daemon = Daemon(botbusd_program, tmp_path / f"data-{next(numbers)}", list(extra_args))
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        if daemon.killed:
            continue
        status = daemon.stop()
        assert status == 0, f"botbusd exited with {status} on SIGTERM; stderr:\n{daemon.stderr_text()}"


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> Daemon:
    """A botbusd with the default settings."""
    return start_daemon()


@pytest.fixture
def connect(start_daemon: StartDaemon) -> Iterator[Connect]:
    """Opens a client on a daemon, optionally saying hello; closed at the end."""
    clients: list[Client] = []

    def open_client(
        daemon: Daemon,
        bot: str | None = None,
        *,
        pushes: bool = True,
        timeout: float = REPLY_TIMEOUT,
        curve: CurveKeys | None = None,
    ) -> Client:
        client = Client(daemon.command_endpoint, daemon.feed_endpoint, timeout=timeout, curve=curve)
        clients.append(client)
        if bot is not None:
            client.hello(bot, pushes=pushes)
        return client

    yield open_client
    for client in clients:
        client.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for number, daemon in enumerate(getattr(item, "botbus_daemons", []), start=1):
            report.sections.append((f"botbusd {number} stderr ({daemon.data_dir})", daemon.stderr_text() or "(empty)"))
