"""scripts/web.py: N daphne processes sharing one listening socket, requests
answered by more than one of them, and a stop signal reaching all of them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from conftest import BASE_DIR, child_env_for_test_database, free_port, wait_for_port

CONNECTIONS = 16


def _wait_for_log(log_path, text: str, count: int, process: subprocess.Popen, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log_path.read_text(errors="replace")
        if content.count(text) >= count:
            return content
        if process.poll() is not None:
            raise AssertionError(f"launcher exited with {process.returncode}:\n{content}")
        time.sleep(0.1)
    raise AssertionError(f"{count}x {text!r} not logged within {timeout} s:\n{log_path.read_text()}")


def _get(port: int, path: str, host: str) -> tuple[socket.socket, bytes]:
    """One HTTP/1.1 request on a connection that stays open (keep-alive) afterwards."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before a response: {received!r}"
        received += chunk
    return conn, received.split(b"\r\n", 1)[0]


def _owner_of(client_port: int, server_port: int, pids: list[int]) -> list[int]:
    """The daphne processes holding the server side of the connection from client_port."""
    owners = []
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == server_port and conn.raddr and conn.raddr.port == client_port:
                owners.append(pid)
    return owners


@pytest.mark.live
def test_two_daphne_processes_share_one_port_and_both_answer(django_db_setup, django_db_blocker, tmp_path):
    with django_db_blocker.unblock():
        env = child_env_for_test_database()
    env["WEB_CONCURRENCY"] = "2"
    port = free_port()
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "scripts/web.py", "--bind", "127.0.0.1", "--port", str(port), "--grace", "10"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    open_connections = []
    try:
        wait_for_port(port, launcher)
        # Both children have adopted the shared socket once each says it listens.
        _wait_for_log(log_path, f"Listening on TCP address 127.0.0.1:{port}", 2, launcher)
        daphnes = [child.pid for child in psutil.Process(launcher.pid).children()]
        assert len(daphnes) == 2
        assert f"2 daphne process(es) on 127.0.0.1:{port}" in log_path.read_text()

        owners = {}
        for _ in range(CONNECTIONS):
            conn, status_line = _get(port, "/admin/login/", "acme.localhost")
            assert status_line == b"HTTP/1.1 200 OK"
            open_connections.append(conn)
            client_port = conn.getsockname()[1]
            owner = _owner_of(client_port, port, daphnes)
            assert len(owner) == 1, f"connection from :{client_port} held by {owner}"
            owners[client_port] = owner[0]
        served = set(owners.values())
        if served != set(daphnes):
            # The kernel may hand every connection of a quiet moment to the process that wakes first: stop that
            # one, and the other must take the next connection on the same port.
            (busy,) = served
            os.kill(busy, signal.SIGSTOP)
            try:
                conn, status_line = _get(port, "/admin/login/", "acme.localhost")
                open_connections.append(conn)
                assert status_line == b"HTTP/1.1 200 OK"
                served |= set(_owner_of(conn.getsockname()[1], port, daphnes))
            finally:
                os.kill(busy, signal.SIGCONT)
        assert served == set(daphnes), f"requests were answered only by {served}"

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(30) == 0
        for pid in daphnes:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        for conn in open_connections:
            conn.close()
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)


@pytest.mark.live
def test_a_daphne_that_dies_stops_the_launcher_with_an_error(django_db_setup, django_db_blocker, tmp_path):
    with django_db_blocker.unblock():
        env = child_env_for_test_database()
    port = free_port()
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "scripts/web.py", "--port", str(port), "--workers", "2", "--grace", "10"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_log(log_path, f"Listening on TCP address 127.0.0.1:{port}", 2, launcher)
        first, second = (child.pid for child in psutil.Process(launcher.pid).children())
        psutil.Process(first).kill()
        assert launcher.wait(30) == 1
        assert f"web: daphne {first} exited with code -9; stopping the others" in log_path.read_text()
        assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)


def test_launcher_refuses_bad_settings_with_a_message():
    cases = [
        (["--workers", "0"], "argument --workers: must be 1 or more, got 0"),
        (["--bind", "::1"], "--bind ::1: only IPv4 addresses can be shared this way"),
        (["--bind", "example.org"], "--bind example.org: not an IP address"),
    ]
    for args, message in cases:
        result = subprocess.run([sys.executable, "scripts/web.py", *args], cwd=BASE_DIR,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result
        assert message in result.stderr
    result = subprocess.run([sys.executable, "scripts/web.py"], cwd=BASE_DIR, capture_output=True, text=True,
                            timeout=30, env={"PATH": "/usr/bin:/bin", "WEB_CONCURRENCY": "many"})
    assert result.returncode == 2
    assert "WEB_CONCURRENCY: invalid literal for int() with base 10: 'many'" in result.stderr


def test_port_in_use_is_reported_without_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "scripts/web.py", "--port", str(port), "--workers", "1"],
                                cwd=BASE_DIR, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith(f"web: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "Traceback" not in result.stderr
