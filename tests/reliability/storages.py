"""Storages that fail the way real ones do, for override_settings(STORAGES=...)."""

import errno
import os
from typing import Any

from botocore.exceptions import ClientError
from django.core.files.storage import FileSystemStorage


class FullDiskStorage(FileSystemStorage):
    """A disk that fills up: after `writes_left` more writes (class-wide), each write stops
    half-way, leaving a truncated file, and raises ENOSPC."""

    writes_left = 0

    def _save(self, name: str, content: Any) -> str:
        if FullDiskStorage.writes_left > 0:
            FullDiskStorage.writes_left -= 1
            return super()._save(name, content)
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = content.read()
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


class BucketErrorStorage(FileSystemStorage):
    """Every write gets the error S3 answers when it cannot take an object (botocore's type)."""

    def _save(self, name: str, content: Any) -> str:
        raise ClientError(
            {
                "Error": {
                    "Code": "InternalError",
                    "Message": "We encountered an internal error. Please try again.",
                },
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
            "PutObject",
        )


def storages(backend: str, location: str, staticfiles: dict[str, Any]) -> dict[str, Any]:
    return {
        "default": {"BACKEND": backend, "OPTIONS": {"location": location}},
        "staticfiles": staticfiles,
    }
