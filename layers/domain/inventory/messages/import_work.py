"""What the import queue carries: an import's next step (from the API, or handed on by the worker
itself), and S3's notifications of files dropped in the import bucket."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from inventory.errors import InvalidInput
from inventory.messages.parsing import invalid, json_object
from inventory.models import PARTIAL_LAYERS, ImportKind, LocationType
from inventory.types import ClientId, FlagText, LocationId, LogicalTimestampText


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ImportStep(_Message):
    """Run (or go on with) one import."""

    location_id: LocationId
    import_id: ClientId


class LayerPurge(_Message):
    """Delete the rows of import layers that an import's ending leaves invisible (docs/data-design.md,
    "Imports: a bounded number of layers", Purges): those it supersedes or merged when it completed,
    or its own when it failed; from `shard` on, once its ending released the location and a whole
    delay has passed since that was seen (`released_seen`)."""

    location_id: LocationId
    import_id: ClientId
    layers: Annotated[
        list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=1 + PARTIAL_LAYERS)
    ]  # what one ending leaves invisible
    shard: Annotated[int, Field(ge=0)] = 0
    released_seen: bool = False


class _S3Bucket(_Message):
    name: Annotated[StrictStr, Field(min_length=1)]


class _S3Object(_Message):
    key: Annotated[StrictStr, Field(min_length=1)]


class _S3Entity(_Message):
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(_Message):
    s3: _S3Entity


class FilesDropped(_Message):
    """S3's `ObjectCreated` notification. Only what the worker reads is required (Powertools'
    `S3Model` requires every field AWS sends, which S3-compatible local stores leave out)."""

    records: list[_S3Record] = Field(alias="Records", min_length=1)

    def files(self) -> list[tuple[str, str]]:
        """(bucket, key) of each file, the key URL-decoded as S3 notifications encode it."""
        return [(r.s3.bucket.name, unquote_plus(r.s3.object.key)) for r in self.records]


class S3TestEvent(_Message):
    """What S3 sends once when a notification is configured; nothing to do."""

    event: Literal["s3:TestEvent"] = Field(alias="Event")


ImportWork = ImportStep | LayerPurge | FilesDropped | S3TestEvent


class FileMetadata(_Message):
    """The object metadata a dropped file may carry (S3 lower-cases user metadata names)."""

    shipments_included_through: LogicalTimestampText | None = Field(default=None, alias="shipments-included-through")
    force: FlagText = False
    location_type: LocationType | None = Field(default=None, alias="location-type")


class DroppedFile(_Message):
    """What the key of a file dropped in the import bucket names:
    `imports/<location_id>/<kind>/<import_id>.<jsonl|ndjson|csv>[.gz]`."""

    location_id: LocationId
    kind: ImportKind
    import_id: ClientId


def parse_import_work(body: str) -> ImportWork:
    """The import queue's message, or InvalidInput naming what is wrong with it."""
    raw = json_object(body)
    model: type[ImportWork]
    if "Records" in raw:
        model = FilesDropped
    elif "Event" in raw:
        model = S3TestEvent
    elif "layers" in raw:
        model = LayerPurge
    else:
        model = ImportStep
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise invalid(error, "message", "the import queue's message is not valid") from error


def parse_file_metadata(metadata: dict[str, str]) -> FileMetadata:
    try:
        return FileMetadata.model_validate(metadata)
    except ValidationError as error:
        raise invalid(error, "metadata", "the file's object metadata is not valid") from error


def parse_dropped_file(key: str) -> DroppedFile:
    """The import a dropped file's key names, or InvalidInput saying what is wrong with the key."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "imports":
        raise InvalidInput(f"{key!r} is not imports/<location_id>/<kind>/<import_id>.<format>")
    _, location_id, kind, name = parts
    try:
        return DroppedFile.model_validate(
            {"location_id": location_id, "kind": kind, "import_id": name.split(".", 1)[0]}
        )
    except ValidationError as error:
        if any(problem["loc"] == ("kind",) for problem in error.errors()):
            raise InvalidInput(f"{kind!r} is not an import kind: initial, full_count or partial") from error
        raise InvalidInput(f"{key!r} does not name a valid location id and import id") from error
