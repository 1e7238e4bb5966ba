"""Storage through django-storages' S3 backend against a real local S3 server
(moto's server mode), and /healthz against live and stopped dependencies."""
import subprocess
import sys
import urllib.request

import boto3
import pytest
import redis
from django.core.files.base import ContentFile
from storages.backends.s3 import S3Storage

from apps.core import health
from config.devservices import EmbeddedRedis
from conftest import free_port, wait_for_port


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def s3_storage(s3_server):
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    boto3.client("s3", endpoint_url=s3_server, **credentials).create_bucket(Bucket="recordings")
    return S3Storage(
        bucket_name="recordings", endpoint_url=s3_server, access_key="test", secret_key="test",
        region_name="us-east-1", default_acl=None, querystring_auth=True, file_overwrite=False,
    )


def test_s3_storage_round_trip(s3_storage, s3_server):
    payload = bytes(range(256)) * 64
    name = s3_storage.save("acme/recordings/call-1.wav", ContentFile(payload))
    assert name == "acme/recordings/call-1.wav"
    assert s3_storage.exists(name) and s3_storage.size(name) == len(payload)
    with s3_storage.open(name) as handle:
        assert handle.read() == payload
    # Saving under a taken name never overwrites: a recording is never lost.
    second = s3_storage.save("acme/recordings/call-1.wav", ContentFile(b"other"))
    assert second != name
    # A signed URL fetches the object over HTTP from the S3 server.
    url = s3_storage.url(name)
    assert url.startswith(s3_server) and "Signature" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == payload
    s3_storage.delete(name)
    assert not s3_storage.exists(name)


def test_healthz_ok_when_everything_is_up(client, db, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    healthy, report = health.health_report(
        {**health.CHECKS, "workers": lambda: {"ok": True, "workers": ["test@worker"]}}
    )
    assert healthy, report
    assert {name: item["ok"] for name, item in report.items()} == {
        "database": True, "redis": True, "storage": True, "workers": True}


def test_healthz_goes_503_when_redis_stops(client, db, settings, tmp_path):
    own_redis = EmbeddedRedis(tmp_path / "redis")
    settings.REDIS_URL = own_redis.start()
    try:
        assert redis.Redis.from_url(settings.REDIS_URL).ping()
    finally:
        own_redis.stop()
    response = client.get("/healthz", HTTP_HOST="localhost")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["workers"] == {"ok": False, "error": "broker (Redis) unreachable", "ms": 0.0}
    assert body["checks"]["database"]["ok"] is True


def test_healthz_reports_missing_workers(client, db):
    # No worker runs in this test: the check must say so, with a non-200.
    response = client.get("/healthz", HTTP_HOST="acme.localhost")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["ok"] is False
    assert response.json()["checks"]["redis"]["ok"] is True
