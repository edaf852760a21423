"""Model artifacts: written whole and checksummed, read back only if the checksum still matches."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ..models import Asset, ModelVersion

log = logging.getLogger(__name__)


class ArtifactError(Exception):
    """A model artifact is missing or does not match its checksum."""


def artifact_write(*, asset: Asset, data: bytes) -> tuple[str, int, str]:
    """Store the artifact under its final name, complete or not at all, and check what was stored.

    On a filesystem it is written under a temporary name and renamed (a crash mid-write leaves no
    half file under the final name); the database and object storage write a whole object at once."""
    sha = hashlib.sha256(data).hexdigest()
    storage = default_storage
    final = f"models/{asset.symbol}/{sha[:16]}-{uuid.uuid4().hex[:8]}.pt"
    try:
        storage.path(final)
    except NotImplementedError:
        final = storage.save(final, ContentFile(data))
        stored = final
    else:
        stored = storage.save(f"models/{asset.symbol}/tmp/{uuid.uuid4().hex}.part", ContentFile(data))
    with storage.open(stored, "rb") as f:
        written = hashlib.sha256(f.read()).hexdigest()
    if written != sha:
        storage.delete(stored)
        raise ArtifactError(f"artifact for {asset.symbol} was not written intact")
    if stored != final:
        dst = storage.path(final)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(storage.path(stored), dst)  # atomic on one filesystem
    return final, len(data), sha


def artifact_read(*, version: ModelVersion) -> bytes:
    """The version's artifact, verified against its checksum; ArtifactError says what is wrong."""
    try:
        with default_storage.open(version.artifact.name, "rb") as f:
            data = f.read()
    except (FileNotFoundError, OSError) as exc:
        raise ArtifactError(f"artifact {version.artifact.name} cannot be read: {exc}") from exc
    sha = hashlib.sha256(data).hexdigest()
    if sha != version.artifact_sha256:
        raise ArtifactError(f"artifact checksum mismatch: expected {version.artifact_sha256[:12]}…, found {sha[:12]}…")
    return data


def artifact_discard(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        log.exception("Could not delete the unrecorded artifact %s", name)
