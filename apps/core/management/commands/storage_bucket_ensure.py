"""Create the S3 bucket of the default storage if it is missing; run by the production
stack's migrate service. With local file storage it only makes sure the folder exists.

    python manage.py storage_bucket_ensure [--wait SECONDS]
"""
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

S3_BACKEND = "storages.backends.s3.S3Storage"
MISSING = {"404", "NoSuchBucket", "NotFound"}


class Command(BaseCommand):
    help = "Create the S3 bucket of the default storage if it does not exist (local storage: its folder)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=0.0,
                            help="seconds to keep retrying while the S3 endpoint cannot be reached")

    def handle(self, *args, wait, **options):
        storage = settings.STORAGES["default"]
        if storage["BACKEND"] != S3_BACKEND:
            location = Path(storage.get("OPTIONS", {}).get("location") or settings.MEDIA_ROOT)
            location.mkdir(parents=True, exist_ok=True)
            self.stdout.write(f"storage: local files in {location}; no bucket needed")
            return
        from storages.backends.s3 import S3Storage

        s3 = S3Storage(**storage.get("OPTIONS", {}))
        client, bucket = s3.connection.meta.client, s3.bucket_name
        endpoint = client.meta.endpoint_url
        deadline = time.monotonic() + wait
        while True:
            try:
                created = self._ensure(client, bucket)
                break
            except (EndpointConnectionError, ConnectionError) as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(f"Cannot reach S3 at {endpoint} ({exc}). Is the S3 service up? "
                                       "--wait N retries for N seconds.") from exc
                time.sleep(1.0)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise CommandError(f"S3 at {endpoint} refused bucket {bucket!r}: {error.get('Code')} "
                                   f"{error.get('Message', '')}. Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                                   "and AWS_STORAGE_BUCKET_NAME.") from exc
            except BotoCoreError as exc:
                raise CommandError(f"S3 at {endpoint}: {exc}") from exc
        self.stdout.write(f"storage: bucket {bucket} {'created' if created else 'already exists'} at {endpoint}")

    @staticmethod
    def _ensure(client, bucket: str) -> bool:
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in MISSING:
                raise
        region = client.meta.region_name
        options = {} if region in (None, "us-east-1") else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            client.create_bucket(Bucket=bucket, **options)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":  # a race with another run
                raise
            return False
        return True
