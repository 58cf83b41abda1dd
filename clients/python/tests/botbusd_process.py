"""A real botbusd for the tests: started in a data directory of its own on
loopback ports the kernel picks, stopped with SIGTERM (as
tests/daemon_process.cpp does for the C++ suite)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

READY_WITHIN = 20.0
STOP_WITHIN = 20.0

REPO = Path(__file__).resolve().parents[3]


def find_program(variable: str, relative: str) -> Path | None:
    """The program named by the environment variable, else the build tree's
    (``relative`` to the repository); None when neither exists."""
    named = os.environ.get(variable)
    candidate = Path(named) if named else REPO / relative
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


class Daemon:
    """One botbusd process."""

    def __init__(self, program: Path, data_dir: Path, extra_args: list[str]) -> None:
        self.data_dir = data_dir
        self.stderr_path = data_dir.with_name(data_dir.name + ".stderr")
        self.exit_code: int | None = None
        self.killed = False
        args = [str(program), "--data-dir", str(data_dir), "--log-level", "warn"]
        for option in ("--command-endpoint", "--feed-endpoint"):
            if option not in extra_args:
                args += [option, "tcp://127.0.0.1:*"]
        args += extra_args
        with self.stderr_path.open("wb") as stderr:
            self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr)
        line = self._read_ready_line()
        if not line.startswith("botbusd ready "):
            self._kill()
            raise RuntimeError(f"botbusd did not become ready (got {line!r}); stderr:\n{self.stderr_text()}")
        fields = dict(part.split("=", 1) for part in line.split()[2:] if "=" in part)
        self.command_endpoint = fields["command"]
        self.feed_endpoint = fields["feed"]

    def _read_ready_line(self) -> str:
        # The daemon prints one line once both sockets are bound.
        assert self._process.stdout is not None
        received = b""
        deadline = time.monotonic() + READY_WITHIN
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    break
                chunk = os.read(self._process.stdout.fileno(), 512)
                if not chunk:
                    break
                received += chunk
        return received.decode(errors="replace").split("\n", 1)[0]

    def stderr_text(self) -> str:
        """What the daemon logged (warnings and errors)."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM, then waits for the exit; returns the exit status.
        Raises RuntimeError (with the log) if it does not exit in time."""
        if self.exit_code is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self._process.wait(STOP_WITHIN)
            except subprocess.TimeoutExpired:
                self._kill()
                raise RuntimeError(
                    f"botbusd did not exit within {STOP_WITHIN} s of SIGTERM; stderr:\n{self.stderr_text()}"
                )
            finally:
                self._close_stdout()
        return self.exit_code

    def kill(self) -> None:
        """kill -9, as a crashed machine would; the daemon counts as killed."""
        self.killed = True
        self._kill()

    def _kill(self) -> None:
        self._process.kill()
        self.exit_code = self._process.wait()
        self._close_stdout()

    def _close_stdout(self) -> None:
        if self._process.stdout is not None and not self._process.stdout.closed:
            self._process.stdout.close()
