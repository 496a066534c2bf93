"""Availability exports (SPEC.md section 4): the export, each location's file, and what a location
remembers of its last export (docs/data-design.md, "Availability exports")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from inventory.models import Frozen

EXPORT_PREFIX = "availability"  # s3://<export bucket>/availability/<export_id>/<location_id>.jsonl.gz
MANIFEST_NAME = "manifest.json"


class ExportMode(StrEnum):
    FULL = "full"
    DELTA = "delta"


class ExportStatus(StrEnum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def file_key(export_id: str, location_id: str) -> str:
    return f"{EXPORT_PREFIX}/{export_id}/{location_id}.jsonl.gz"


def manifest_key(export_id: str) -> str:
    return f"{EXPORT_PREFIX}/{export_id}/{MANIFEST_NAME}"


class ExportPoint(Frozen):
    """The point a location's file reflects: its location read (`as_of`), the newest import visible
    then, and what a later delta compares with to know what changed since."""

    as_of: datetime
    import_seq: int  # the highest visible layer (0: none)
    baseline_seq: int  # the newest visible initial or full_count import (0: none)
    figures_version: int  # the location's, at the read
    import_id: str | None = None  # the newest visible import's id


class LocationFile(Frozen):
    """One location's file of one export, as committed."""

    location_id: str
    export_id: str
    full: bool  # a full file (every product), whatever the export's mode
    rows: int
    uri: str
    sha256: str
    since_export_id: str | None = None  # the export a delta is relative to; None for a full file
    point: ExportPoint


class LocationExport(Frozen):
    """A location's part of an export: its status and, once completed, its file."""

    location_id: str
    status: ExportStatus
    file: LocationFile | None = None
    error: str | None = None


class AvailabilityExport(Frozen):
    export_id: str
    mode: ExportMode
    location_ids: tuple[str, ...]
    requested_at: datetime
    requested_by: str
    body_hash: str  # of what was asked (mode and the named locations): a repeat must match it
    status: ExportStatus = ExportStatus.ACCEPTED
    completed_at: datetime | None = None
    manifest_uri: str | None = None


class ExportState(Frozen):
    """What a location keeps of its exports: the export running for it (its lease) and its last file."""

    location_id: str
    holder: str | None = None
    lease_until: datetime | None = None
    last: LocationFile | None = None
