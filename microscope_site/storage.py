"""Content-addressed files in Django's default storage (a local folder or a bucket): renders,
dataset thumbnails, connection matrices and exports are all stored under their sha256."""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage

logger = logging.getLogger(__name__)


def file_sha256(name: str, storage: Storage | None = None) -> str:
    """The sha256 of a stored file's bytes, read in chunks (renders are small; exports are not)."""
    digest = hashlib.sha256()
    with (storage or default_storage).open(name, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def store_content(data: bytes, *, folder: str, suffix: str = ".png") -> tuple[str, str]:
    """Save `data` under a name made of its sha256; returns (name, sha256).

    The name is the content, so a file that exists with the right bytes is reused, and one left
    half-written by a killed worker (wrong bytes under that name) is replaced. A write that
    fails (disk full, a bucket's error) raises after removing what it left under the name, so
    no row is written for it and no truncated file stays behind.
    """
    sha = hashlib.sha256(data).hexdigest()
    name = f"{folder}/{sha[:2]}/{sha}{suffix}"
    if default_storage.exists(name):
        if file_sha256(name) == sha:
            return name, sha
        default_storage.delete(name)
    try:
        saved = default_storage.save(name, ContentFile(data))
    except Exception:
        _discard_unless_complete(name, sha)
        raise
    if saved != name:
        default_storage.delete(saved)
        # Another worker stored the same bytes between our check and our write.
        if default_storage.exists(name) and file_sha256(name) == sha:
            return name, sha
        raise OSError(f"storage refused the content-addressed name {name} (gave {saved})")
    return name, sha


def _discard_unless_complete(name: str, sha: str) -> None:
    try:
        if default_storage.exists(name) and file_sha256(name) != sha:
            default_storage.delete(name)
    except Exception:  # the storage is failing: the original error is the one to report
        logger.warning("could not remove the partial file %s", name, exc_info=True)
