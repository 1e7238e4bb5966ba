"""Fixtures every test can use: two real client schemas (acme, globex) created
once per session, users for them, and real servers on loopback (daphne, a Celery
worker) pointed at the test database."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from config.devservices import free_port, wait_for_port  # noqa: F401  (tests import them from here)

BASE_DIR = Path(__file__).resolve().parent
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb):
    """The test database, always (pytest-django would skip it when a run's only
    database users are `committed_db` tests), plus the two session tenants."""
    from django.test.utils import setup_databases, teardown_databases

    from apps.tenancy.models import Client
    from apps.tenancy.services import client_create

    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=request.config.option.verbose, interactive=False, aliases={"default"},
            keepdb=django_db_keepdb,
        )
        for slug, name in (("acme", "Acme Dental"), ("globex", "Globex Plumbing")):
            if not Client.objects.filter(slug=slug).exists():
                client_create(
                    slug=slug, name=name, domain=f"{slug}.localhost",
                    admin_email=f"admin@{slug}.test", admin_password=PASSWORD,
                )
    yield
    if not django_db_keepdb:
        from django.db import connections

        with django_db_blocker.unblock():
            # Threads of async tests may still hold sockets to the test database.
            connections.close_all()
            try:
                teardown_databases(db_cfg, verbosity=request.config.option.verbose)
            except Exception as exc:  # a leftover session must not fail the run
                print(f"test database teardown: {exc}")


@pytest.fixture(autouse=True)
def _reset_schema_to_public():
    yield
    from django.db import connection

    connection.set_schema_to_public()


@pytest.fixture
def tenant_a(db):
    from apps.tenancy.models import Client

    return Client.objects.get(slug="acme")


@pytest.fixture
def tenant_b(db):
    from apps.tenancy.models import Client

    return Client.objects.get(slug="globex")


@pytest.fixture
def agency_owner(db):
    from apps.accounts.models import User

    user = User(username="owner@agency.test", email="owner@agency.test", role=User.Role.AGENCY_OWNER)
    user.set_password(PASSWORD)
    user.save()
    return user


def child_env_for_test_database() -> dict:
    """Environment for a child process that must use the test database."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def run_daphne(env: dict, log_path: Path):
    """A real daphne serving config.asgi on a free loopback port, stopped on exit."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, process)
            yield {"port": port, "url": f"http://127.0.0.1:{port}", "ws": f"ws://127.0.0.1:{port}",
                   "log": log_path, "process": process}
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """daphne against the test database. Data a test wants it to see must be
    committed (use `committed_db`)."""
    with django_db_blocker.unblock():
        env = child_env_for_test_database()
    with run_daphne(env, tmp_path_factory.mktemp("daphne") / "daphne.log") as server:
        yield server


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Database access without a wrapping transaction, for tests whose data other
    processes (daphne, a worker) must see. Clean up what you create."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def celery_eager():
    """Run tasks sent with .delay() at once, in this process (raising their errors):
    for tests of what a task does after the service that enqueues it. Tests of the
    delivery itself use a real worker (apps/core/tests/test_celery.py)."""
    from config.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def clean_leases():
    """Forget provider key lease books and rotation counters (Redis) so rotation order is deterministic."""
    from apps.providers.services import _redis

    def wipe():
        for key in _redis().scan_iter("sb:provider-*"):
            _redis().delete(key)

    wipe()
    yield
    wipe()
