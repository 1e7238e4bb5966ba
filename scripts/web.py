"""Several daphne processes serving one port: the web process of `make run` (Procfile)
and of the production image (docker/compose.yaml).

    python scripts/web.py [--bind 0.0.0.0] [--port 8000] [--workers N] [-- DAPHNE_ARGS...]

Binds the listening socket once, then starts N `daphne --fd <fd>` children that share
it: each child is one event loop, and the kernel hands each new connection (an HTTP
request or a call's media websocket) to whichever child accepts it first, so calls
spread over the cores. N is WEB_CONCURRENCY, else one per core this process may run on.

SIGTERM / SIGINT / SIGHUP are passed on to every child; after a grace period what is
still running is killed. If one child exits on its own, the others are stopped and
this process exits with that child's code (non-zero), so the supervisor (honcho under
`make run`, Docker's restart policy in production) sees the failure and restarts the
whole web process rather than serving on with fewer event loops than it was asked for.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time

APPLICATION = "config.asgi:application"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def default_workers() -> int:
    """WEB_CONCURRENCY if set, else the cores this process may use (a container's CPU set)."""
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return number


def parse_args(argv: list[str]) -> argparse.Namespace:
    daphne_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, daphne_args = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default=os.environ.get("BIND_ADDRESS", "127.0.0.1"),
                        help="IPv4 address to listen on (BIND_ADDRESS; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=os.environ.get("PORT", "8000"),
                        help="port to listen on (PORT; default 8000)")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="daphne processes (WEB_CONCURRENCY; default one per core)")
    parser.add_argument("--backlog", type=int, default=1024, help="listen queue length")
    parser.add_argument("--grace", type=float, default=20.0,
                        help="seconds children get to finish after a stop signal before they are killed")
    parser.add_argument("--application", default=APPLICATION, help=f"ASGI application (default {APPLICATION})")
    args = parser.parse_args(argv)
    if args.workers is None:
        try:
            args.workers = positive_int(str(default_workers()))
        except (ValueError, argparse.ArgumentTypeError) as exc:
            parser.error(f"WEB_CONCURRENCY: {exc}")
    try:
        if ipaddress.ip_address(args.bind).version != 4:
            parser.error(f"--bind {args.bind}: only IPv4 addresses can be shared this way (daphne --fd is IPv4)")
    except ValueError:
        parser.error(f"--bind {args.bind}: not an IP address (use e.g. 0.0.0.0 or 127.0.0.1)")
    args.daphne_args = daphne_args
    return args


def listening_socket(bind: str, port: int, backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def stop(children: list[subprocess.Popen], grace: float) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        sock = listening_socket(args.bind, args.port, args.backlog)
    except OSError as exc:
        print(f"web: cannot listen on {args.bind}:{args.port}: {exc.strerror} "
              "(is another server on that port? set PORT to use another)", file=sys.stderr)
        return 1
    stopping: list[int] = []

    def on_signal(signum, _frame):
        stopping.append(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, on_signal)
    command = [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()), *args.daphne_args, args.application]
    children = [subprocess.Popen(command, pass_fds=(sock.fileno(),)) for _ in range(args.workers)]
    sock.close()  # the children hold it; this process never accepts
    print(f"web: {args.workers} daphne process(es) on {args.bind}:{args.port}, "
          f"pids {' '.join(str(child.pid) for child in children)}", flush=True)
    exit_code = 0
    while not stopping:
        ended = [child for child in children if child.poll() is not None]
        if ended:
            exit_code = ended[0].returncode if ended[0].returncode > 0 else 1
            print(f"web: daphne {ended[0].pid} exited with code {ended[0].returncode}; stopping the others",
                  file=sys.stderr, flush=True)
            break
        time.sleep(0.2)
    stop(children, args.grace)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
