"""The production stack as files: docker/compose.yaml's start order and commands,
the Procfile, and `config` choosing no settings module when imported. (No Docker
engine here: the compose file is checked by parsing it.)"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import yaml
from django.core.management import get_commands

from conftest import BASE_DIR

COMPOSE = BASE_DIR / "docker" / "compose.yaml"
APP_SERVICES = ("migrate", "web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _commands(command: str) -> list[list[str]]:
    """`sh -c "a && b"` -> [a, b]; anything else -> [command]."""
    words = shlex.split(command)
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in words[2].split("&&")]
    return [words]


def _check_command(words: list[str]) -> None:
    """The command names something that exists in this repository."""
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]  # VAR=value prefixes
    if words[:2] == ["python", "manage.py"]:
        assert words[2] in get_commands(), f"no manage.py command {words[2]!r}"
    elif words[:2] == ["python", "scripts/web.py"]:
        sys.path.insert(0, str(BASE_DIR / "scripts"))
        try:
            import web
        finally:
            sys.path.pop(0)
        args = web.parse_args(words[2:])
        assert args.application == "config.asgi:application"
    elif words[0] == "celery":
        assert words[1:3] == ["-A", "config.celery"], words
        import config.celery

        assert config.celery.app.main == "switchboard"
        assert words[3] in ("worker", "beat")
    else:
        raise AssertionError(f"unknown command {words}")


def test_app_services_start_after_a_successful_migrate_on_healthy_backends():
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "s3", *APP_SERVICES}
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}, name
        assert services[name]["restart"] == "unless-stopped"
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "s3": {"condition": "service_started"},
    }
    assert services["migrate"]["restart"] == "no"
    assert services["postgres"]["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U switchboard -d switchboard"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_app_services_share_one_image_and_environment():
    services = _compose()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}, name
        assert service["env_file"] == ".env"
        assert service["environment"]["DATABASE_URL"] == \
            "postgres://switchboard:${POSTGRES_PASSWORD}@postgres:5432/switchboard"
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["environment"]["AWS_S3_ENDPOINT_URL"] == "http://s3:8333"
    assert (BASE_DIR / "docker" / "Dockerfile").exists()


def test_migrate_runs_migrations_then_creates_the_bucket_and_every_command_exists():
    services = _compose()["services"]
    migrate = _commands(services["migrate"]["command"])
    assert [words[:3] for words in migrate] == [["python", "manage.py", "migrate"],
                                                ["python", "manage.py", "storage_bucket_ensure"]]
    assert _commands(services["web"]["command"]) == [
        ["python", "scripts/web.py", "--bind", "0.0.0.0", "--port", "8000"]]
    for name in APP_SERVICES:
        for words in _commands(services[name]["command"]):
            _check_command(words)


def test_the_documented_first_owner_command_exists_and_runs_in_the_web_service():
    documented = "docker compose -f docker/compose.yaml run --rm web python manage.py create_agency_owner --email"
    readme = (BASE_DIR / "README.md").read_text()
    assert documented in readme
    assert documented in COMPOSE.read_text()
    assert "web" in _compose()["services"]
    assert "create_agency_owner" in get_commands()


def test_dockerfile_installs_the_runtime_lock_only_and_starts_the_launcher():
    dockerfile = (BASE_DIR / "docker" / "Dockerfile").read_text()
    assert "RUN pip install --no-cache-dir -r requirements/lock.txt" in dockerfile
    assert "lock-test" not in dockerfile
    assert 'CMD ["python", "scripts/web.py", "--bind", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert "ENV DJANGO_SETTINGS_MODULE=config.settings.base" in dockerfile
    # BuildKit reads <Dockerfile>.dockerignore beside it: the local venv, data and git stay out of the image.
    ignored = (BASE_DIR / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert {".git", ".venv", "var", "docker/.env"} <= set(ignored)


def test_procfile_lines_name_existing_commands():
    lines = dict(line.split(": ", 1) for line in (BASE_DIR / "Procfile").read_text().splitlines() if line.strip())
    assert list(lines) == ["web", "worker", "beat"]  # web first: honcho gives the first process $PORT
    for command in lines.values():
        # ${VAR:-default} as a shell without VAR expands it
        _check_command(shlex.split(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", command)))
    for name in ("worker", "beat"):
        # celery -A config.celery: the settings module is chosen on the command line, not by importing config.
        assert lines[name].startswith("DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.base} ")


def test_importing_config_chooses_no_settings_module():
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    probe = "import os, config, config.celery; print(os.environ.get('DJANGO_SETTINGS_MODULE'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "None\n"
    # A script that imports config first and then picks its settings keeps its pick.
    probe = ("import os, config; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.test'); "
             "from django.conf import settings; print(settings.SETTINGS_MODULE)")
    env["SWITCHBOARD_VAR_DIR"] = os.environ.get("SWITCHBOARD_VAR_DIR", str(BASE_DIR / "var"))
    result = subprocess.run([sys.executable, "-c", probe], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "config.settings.test"


def test_nothing_refers_to_a_path_outside_the_repository():
    """Absolute machine paths or parent-directory escapes, other than the shared fixtures beside the repository.
    benchmarks/RESULTS.md is exempt: it records where past runs were made."""
    outside = re.compile(r"(?<![\w.:/])/(tmp|work|home|root|Users|opt|srv)/|\.\./(?!shared\b)")
    files = subprocess.run(["git", "ls-files"], cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout
    found = []
    for name in files.splitlines():
        path = BASE_DIR / name
        if name == "benchmarks/RESULTS.md" or not path.is_file() or path.suffix in {".wav", ".png", ".ico", ".ttf"}:
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if outside.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert found == []
