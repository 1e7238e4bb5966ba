"""`make run`: the platform with seeded demo data on the embedded default.

Writes var/local.env (generated secrets) once, starts embedded PostgreSQL and
Redis when DATABASE_URL / REDIS_URL are unset, migrates public and client
schemas, seeds demo data once, then runs web + worker + beat from the Procfile.
Ctrl-C stops everything it started."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
VENV_BIN = Path(sys.executable).parent


def ensure_local_env(path: Path) -> dict:
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"FIELD_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
            f"DEMO_PASSWORD=demo-{secrets.token_urlsafe(9)}\n"
        )
        path.chmod(0o600)
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, cwd=BASE_DIR, check=True)


def main() -> int:
    from config.devservices import ensure_services, stop_all

    env = dict(os.environ)
    for key, value in ensure_local_env(BASE_DIR / "var" / "local.env").items():
        env.setdefault(key, value)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    port = env.setdefault("PORT", "8000")
    env.setdefault("PUBLIC_PORT", port)
    try:
        for name, url in ensure_services(env).items():
            print(f"embedded {name.split('_')[0].lower()}: {url}", flush=True)
        manage("migrate", "--noinput", env=env)
        manage("collectstatic", "--noinput", "-v", "0", env=env)
        manage("seed_demo", env=env)
        password = env["DEMO_PASSWORD"]
        print(
            "\n"
            f"  Agency admin : http://localhost:{port}/admin/   owner@agency.local / {password}\n"
            f"  Client portal: http://demo.localhost:{port}/    admin@demo.local / {password}\n"
            f"  Health       : http://localhost:{port}/healthz\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        honcho = subprocess.Popen([str(VENV_BIN / "honcho"), "start", "-f", str(BASE_DIR / "Procfile")],
                                  env=env, cwd=BASE_DIR)
        signal.signal(signal.SIGINT, lambda *_: None)  # honcho gets Ctrl-C too and stops its children
        signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())
        return honcho.wait()
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
