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
    """Write under a temporary name, checksum what was written, then move it into place."""
    sha = hashlib.sha256(data).hexdigest()
    storage = default_storage
    tmp = storage.save(f"models/{asset.symbol}/tmp/{uuid.uuid4().hex}.part", ContentFile(data))
    with storage.open(tmp, "rb") as f:
        written = hashlib.sha256(f.read()).hexdigest()
    if written != sha:
        storage.delete(tmp)
        raise ArtifactError(f"artifact for {asset.symbol} was not written intact")
    final = f"models/{asset.symbol}/{sha[:16]}-{uuid.uuid4().hex[:8]}.pt"
    try:
        src, dst = storage.path(tmp), storage.path(final)
    except NotImplementedError:  # remote storage: copy, then delete the temporary object
        with storage.open(tmp, "rb") as f:
            final = storage.save(final, f)
        storage.delete(tmp)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)  # atomic on one filesystem: the final name is complete or absent
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
