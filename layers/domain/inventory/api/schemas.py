"""The HTTP contract's bodies (SPEC.md section 4). Unknown fields and wrong types are refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StrictBool, StrictInt, StrictStr

from inventory.models import ImportSummary, InventoryMaster, Location, LocationChanges, LocationType, Readiness, iso

UtcTime = Annotated[datetime, PlainSerializer(iso, return_type=str)]
Quantity = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]


class Request(BaseModel):
    """A request body: unknown fields are refused, and no type is coerced (StrictX fields)."""

    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------- errors
class ErrorDetail(Reply):
    field: str | None = None
    code: str
    message: str


class ErrorInfo(Reply):
    code: str = Field(examples=["validation_error"])
    message: str
    details: list[dict[str, Any]] = []


class ErrorBody(Reply):
    error: ErrorInfo


# ---------------------------------------------------------------- locations
class PutLocationBody(Request):
    type: LocationType
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    enabled: StrictBool | None = None
    trust_imported_stock: StrictBool | None = None
    default_safety_stock: Quantity | None = None
    allow_backorders: StrictBool | None = None

    def changes(self) -> LocationChanges:
        return LocationChanges.model_validate(self.model_dump())


class LastImport(Reply):
    import_id: str
    kind: str
    status: str
    completed_at: UtcTime | None = None


class LocationOut(Reply):
    location_id: str
    type: LocationType
    name: str | None
    enabled: bool
    trust_imported_stock: bool
    default_safety_stock: int
    allow_backorders: bool
    inventory_master: InventoryMaster
    master_switched_at: UtcTime | None
    master_switched_by: str | None
    last_import: LastImport | None
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def of(cls, location: Location) -> LocationOut:
        last: ImportSummary | None = location.last_import
        return cls(
            **location.model_dump(include=set(cls.model_fields) - {"last_import"}),
            last_import=LastImport(**last.model_dump()) if last else None,
        )


class LocationList(Reply):
    items: list[LocationOut]
    next_cursor: str | None


# ---------------------------------------------------------------- the switch
class SwitchBody(Request):
    inventory_master: InventoryMaster


class ReasonOut(Reply):
    code: Literal[
        "location_is_dc", "no_completed_import", "import_too_old", "import_in_progress", "open_mispick_counts"
    ]
    message: str


class ReadinessOut(Reply):
    location_id: str
    inventory_master: InventoryMaster
    ready: bool
    reasons: list[ReasonOut]
    window_minutes: int
    last_baseline_import_at: UtcTime | None

    @classmethod
    def of(cls, readiness: Readiness) -> ReadinessOut:
        return cls.model_validate(readiness.model_dump())
