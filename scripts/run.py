"""`make run`: the platform with seeded demo data on the embedded default.

Writes var/local.env (generated secrets) once, starts embedded PostgreSQL and
Redis when DATABASE_URL / REDIS_URL are unset, migrates public and client
schemas, seeds demo data once, then runs web + worker + beat from the Procfile.
Ctrl-C stops everything it started."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
VENV_BIN = Path(sys.executable).parent
# What the demo agent's local LLM double answers (anything else is echoed back).
DEMO_RULES = json.dumps([
    # The demo's test personas (apps/quality/seeds.py), told apart by their prompts; then the demo agent.
    {"system": "Persona: Hours asker", "when": "monday to friday", "reply": "Great, thanks, goodbye. [hang up]"},
    {"system": "Persona: Appointment booker", "when": "which day", "reply": "Tuesday morning, please."},
    {"system": "Persona: Appointment booker", "when": "", "reply": "Never mind, goodbye. [hang up]"},
    {"when": "opening hours", "reply": "We are open Monday to Friday, eight to six, and Saturday mornings."},
    {"when": "appointment", "reply": "I can book that. Which day suits you best?"},
    {"when": "goodbye", "tool": "end_call", "arguments": {"reason": "caller said goodbye"}},
    {"when": "person", "tool": "transfer_to_human", "arguments": {"reason": "caller asked for a person"}},
])


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


def demo_double_url(env: dict) -> str:
    """Where the demo agent's OpenAI-compatible STT/LLM double listens, without /v1."""
    return env["DEMO_OPENAI_BASE_URL"].rstrip("/").removesuffix("/v1")


def try_call_command(env: dict) -> str:
    """The simulate_call line printed for a second terminal, which has neither PORT nor
    DEMO_OPENAI_BASE_URL in its environment: both go on the command line."""
    bind = env.get("BIND_ADDRESS", "127.0.0.1")
    host = "127.0.0.1" if bind in ("", "0.0.0.0", "127.0.0.1") else bind
    return (
        ".venv/bin/python manage.py simulate_call --client demo --number +15550100100 "
        f"--server http://{host}:{env['PORT']} --register-with {demo_double_url(env)} "
        "--say 'What are your opening hours?' --say 'Thanks, goodbye'"
    )


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
    services_env = BASE_DIR / "var" / "services.env"
    double = None
    try:
        started = ensure_services(env)
        for name, url in started.items():
            print(f"embedded {name.split('_')[0].lower()}: {url}", flush=True)
        # While this runs, `manage.py ...` in another terminal finds the same services.
        services_env.write_text("".join(f"{key}={value}\n" for key, value in started.items()))
        if not env.get("DEMO_OPENAI_BASE_URL"):
            # The demo agent's STT/LLM run on the local OpenAI-compatible double (no keys, no internet),
            # unless DEMO_OPENAI_BASE_URL says where one already runs.
            double_port = env.get("DEMO_DOUBLE_PORT", "8111")
            env["DEMO_OPENAI_BASE_URL"] = f"http://127.0.0.1:{double_port}/v1"
            double = subprocess.Popen(
                [sys.executable, "-m", "devtools.doubles.openai_server", "--port", double_port,
                 "--rules", DEMO_RULES],
                cwd=BASE_DIR, env=env,
            )
        manage("migrate", "--noinput", env=env)
        manage("collectstatic", "--noinput", "-v", "0", env=env)
        manage("seed_demo", env=env)
        password = env["DEMO_PASSWORD"]
        print(
            "\n"
            f"  Agency admin : http://localhost:{port}/admin/   owner@agency.local / {password}\n"
            f"  Client portal: http://demo.localhost:{port}/    admin@demo.local / {password}\n"
            f"  Health       : http://localhost:{port}/healthz\n"
            f"  Try a call   : {try_call_command(env)}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        honcho = subprocess.Popen([str(VENV_BIN / "honcho"), "start", "-f", str(BASE_DIR / "Procfile")],
                                  env=env, cwd=BASE_DIR)
        signal.signal(signal.SIGINT, lambda *_: None)  # honcho gets Ctrl-C too and stops its children
        signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())
        return honcho.wait()
    finally:
        if double is not None:
            double.terminate()
            double.wait(10)
        services_env.unlink(missing_ok=True)
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
