"""The production stack's set-up commands: create_agency_owner and storage_bucket_ensure."""
import io
import subprocess
import sys

import boto3
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from apps.accounts.models import User
from conftest import free_port, wait_for_port

EMAIL = "founder@agency.example"


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_agency_owner_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("AGENCY_OWNER_PASSWORD", "a-long-password")
    output = _run("create_agency_owner", "--email", "  Founder@Agency.Example ")
    assert output == f"created agency owner {EMAIL}: sign in at the agency host's /admin/\n"
    user = User.objects.get(email=EMAIL)
    assert (user.username, user.role, user.client_id) == (EMAIL, User.Role.AGENCY_OWNER, None)
    assert (user.is_staff, user.is_superuser, user.is_active) == (True, True, True)
    assert user.check_password("a-long-password")


def test_create_agency_owner_asks_twice_on_a_terminal(db, monkeypatch):
    monkeypatch.delenv("AGENCY_OWNER_PASSWORD", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["typed-password-1", "typed-password-1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    _run("create_agency_owner", "--email", EMAIL)
    assert User.objects.get(email=EMAIL).check_password("typed-password-1")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("owner@agency.test", "a-long-password",
         "A user with the email owner@agency.test already exists. Nothing was created."),
        ("not-an-email", "a-long-password", "'not-an-email' is not an email address. Nothing was created."),
        (EMAIL, "short", "Password refused: This password is too short. It must contain at least 8 characters. "
                         "Nothing was created."),
    ],
)
def test_create_agency_owner_refusals_change_nothing(db, agency_owner, monkeypatch, email, password, message):
    monkeypatch.setenv("AGENCY_OWNER_PASSWORD", password)
    before = sorted(User.objects.values_list("email", "role", "password"))
    with pytest.raises(CommandError) as refused:
        _run("create_agency_owner", "--email", email)
    assert str(refused.value) == message
    assert sorted(User.objects.values_list("email", "role", "password")) == before


def test_create_agency_owner_without_a_terminal_or_password_says_what_to_do(db, monkeypatch):
    monkeypatch.delenv("AGENCY_OWNER_PASSWORD", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(CommandError) as refused:
        _run("create_agency_owner", "--email", EMAIL)
    assert str(refused.value) == ("No password: run this on a terminal to be asked for one, "
                                  "or set AGENCY_OWNER_PASSWORD.")
    assert not User.objects.filter(email=EMAIL).exists()


def test_create_agency_owner_passwords_that_differ_create_nothing(db, monkeypatch):
    monkeypatch.delenv("AGENCY_OWNER_PASSWORD", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["typed-password-1", "typed-password-2"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(CommandError, match="The two passwords differ; nothing was created."):
        _run("create_agency_owner", "--email", EMAIL)
    assert not User.objects.filter(email=EMAIL).exists()


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _s3_storages(endpoint: str, bucket: str = "switchboard-media") -> dict:
    return {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "access_key": "test",
                        "secret_key": "test", "region_name": "us-east-1", "default_acl": None},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def test_storage_bucket_ensure_creates_the_bucket_once(s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    assert "switchboard-media" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with override_settings(STORAGES=_s3_storages(s3_endpoint)):
        first = _run("storage_bucket_ensure")
        second = _run("storage_bucket_ensure")
    assert first == f"storage: bucket switchboard-media created at {s3_endpoint}\n"
    assert second == f"storage: bucket switchboard-media already exists at {s3_endpoint}\n"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]].count("switchboard-media") == 1


def test_storage_bucket_ensure_unreachable_s3_is_a_clear_error():
    endpoint = f"http://127.0.0.1:{free_port()}"
    with override_settings(STORAGES=_s3_storages(endpoint)), pytest.raises(CommandError) as refused:
        _run("storage_bucket_ensure", "--wait", "1.5")
    assert str(refused.value).startswith(f"Cannot reach S3 at {endpoint} (")
    assert str(refused.value).endswith("Is the S3 service up? --wait N retries for N seconds.")


def test_storage_bucket_ensure_with_local_files_makes_the_folder(tmp_path):
    location = tmp_path / "media"
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                            "OPTIONS": {"location": str(location)}},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES=storages):
        assert _run("storage_bucket_ensure") == f"storage: local files in {location}; no bucket needed\n"
    assert location.is_dir()
