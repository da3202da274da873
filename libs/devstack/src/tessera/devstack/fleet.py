"""The whole fleet in a subprocess, started by `tessera-run` as `make run` starts it.

For end-to-end tests that reach Tessera the way users do: through the gateway's port.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tessera.devstack.servers import free_port

START_LIMIT_S = 120.0


class Launcher:
    """`tessera-run` in a subprocess, with its output in a file beside the state folder."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.output = state_dir.parent / f"launcher-{port}.out"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The public base URL (the gateway)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start the fleet and wait for its banner; the seconds it took."""
        started = time.monotonic()
        runs_before = self._banners()
        with self.output.open("ab") as sink:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.prefix) / "bin" / "tessera-run"),
                    "--state-dir",
                    str(self.state_dir),
                    "--port",
                    str(self.port),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        while self._banners() == runs_before:
            if self.process.poll() is not None:
                raise RuntimeError(f"tessera-run exited:\n{self.output.read_text()}")
            if time.monotonic() - started > START_LIMIT_S:
                self.kill()
                raise TimeoutError(f"tessera-run did not start:\n{self.output.read_text()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def _banners(self) -> int:
        return self.output.read_text().count("Tessera is running") if self.output.exists() else 0

    def stop(self) -> int:
        """Stop the fleet as Ctrl-C does; its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        """Stop the fleet if it still runs: Ctrl-C first, then SIGKILL after a minute."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def token(self) -> str:
        """The admin's access token that `tessera-run` made."""
        token: str = json.loads((self.state_dir / "secrets.json").read_text())["admin_token"]
        return token


@contextmanager
def fleet_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder for a fleet's state, removed afterwards.

    Outside pytest's base temporary directory: PostgreSQL runs as an unprivileged user
    when the tests run as root and must traverse the path, and each pytest session
    resets `/tmp/pytest-of-<user>` to mode 0700.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def started_fleet(prefix: str) -> Iterator[Launcher]:
    """`tessera-run` on a free port in a fresh `fleet_folder`, started as `make run`
    starts it (the banner seen); stopped and its folder removed afterwards."""
    with fleet_folder(prefix) as base:
        launcher = Launcher(base / "state", free_port())
        try:
            launcher.start()
            yield launcher
        finally:
            launcher.kill()
