"""The HTTP contract's bodies (SPEC.md section 4). Unknown fields and wrong types are refused."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    model_validator,
)

from inventory.cursor import decode_cursor, encode_cursor, invalid_cursor
from inventory.models import (
    AllocationLine,
    AllocationStatus,
    ImportCounts,
    ImportKind,
    ImportRecord,
    ImportStatus,
    ImportSummary,
    InventoryMaster,
    Location,
    LocationChanges,
    LocationType,
    Readiness,
    StockRow,
    iso,
)
from inventory.services.allocations import AllocationRequest, AllocationView
from inventory.services.imports import ImportRequest
from inventory.services.stock import LedgerPosition, ProductAvailability, ProductExplained, ProductStock
from inventory.types import (
    MAIN,
    MAX_ALLOCATION_ITEMS,
    MAX_INLINE_ITEMS,
    ClientId,
    EachProductOnce,
    ExternalId,
    LocationName,
    LogicalTimestamp,
    PositiveQuantity,
    ProductId,
    Quantity,
    S3Uri,
    StockLocation,
)

UtcTime = Annotated[datetime, PlainSerializer(iso, return_type=str)]


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
    name: LocationName | None = None
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


# ---------------------------------------------------------------- stock imports
class ImportItemBody(Request):
    product_id: ProductId
    quantity: Quantity
    stock_location: StockLocation = MAIN


class PostImportBody(Request):
    import_id: ClientId
    kind: ImportKind
    shipments_included_through: LogicalTimestamp | None = None
    force: StrictBool = False
    items: Annotated[list[ImportItemBody], Field(min_length=1, max_length=MAX_INLINE_ITEMS)] | None = None
    source: S3Uri | None = None
    location_type: LocationType | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> PostImportBody:
        if (self.items is None) == (self.source is None):
            raise ValueError(
                f"give either items (inline, up to {MAX_INLINE_ITEMS:,}) or source (s3://<import bucket>/<key>)"
            )
        return self

    def request(self) -> ImportRequest:
        return ImportRequest(
            import_id=self.import_id,
            kind=self.kind,
            shipments_included_through=self.shipments_included_through,
            force=self.force,
            items=[StockRow(**item.model_dump()) for item in self.items] if self.items is not None else None,
            source=self.source,
            location_type=self.location_type,
        )


class ImportOut(Reply):
    location_id: str
    import_id: str
    kind: ImportKind
    status: ImportStatus
    shipments_included_through: int | None
    source: str | None
    accepted_at: UtcTime
    completed_at: UtcTime | None
    counts: ImportCounts
    written_through_line: int = Field(description="Progress: every valid row up to this line of the file is written")
    warnings: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    @classmethod
    def of(cls, record: ImportRecord) -> ImportOut:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


# ---------------------------------------------------------------- stock
class BaseOut(Reply):
    import_id: str
    kind: ImportKind
    quantity: int
    shipments_included_through: int | None


class StockLocationOut(Reply):
    stock_location: str
    quantity: int
    salable: bool


class StockLocationExplained(StockLocationOut):
    base: BaseOut | None


class ProductStockOut(Reply):
    product_id: str
    stock_on_hand: int
    stock_locations: list[StockLocationOut]

    @classmethod
    def of(cls, stock: ProductStock) -> ProductStockOut:
        return cls(
            product_id=stock.product_id,
            stock_on_hand=stock.stock_on_hand,
            stock_locations=[StockLocationOut(**asdict(f)) for f in stock.stock_locations],
        )


class LedgerEntryOut(Reply):
    entry_id: str
    kind: str
    quantity: int
    stock_location: str
    logical_timestamp: int | None
    applied_at: UtcTime
    reference: str | None


class LedgerPage(Reply):
    items: list[LedgerEntryOut]
    next_cursor: str | None


class ProductStockExplained(Reply):
    product_id: str
    stock_on_hand: int
    stock_locations: list[StockLocationExplained]
    ledger: LedgerPage = Field(description="The entries since each stock location's base, in the order applied")

    @classmethod
    def of(cls, explained: ProductExplained) -> ProductStockExplained:
        stock = explained.stock
        return cls(
            product_id=stock.product_id,
            stock_on_hand=stock.stock_on_hand,
            stock_locations=[StockLocationExplained.model_validate(asdict(f)) for f in stock.stock_locations],
            ledger=LedgerPage(
                items=[LedgerEntryOut.model_validate(e.model_dump()) for e in explained.entries],
                next_cursor=encode_ledger_cursor(explained.next_position) if explained.next_position else None,
            ),
        )


def encode_ledger_cursor(position: LedgerPosition) -> str:
    return encode_cursor(list(position))


def decode_ledger_cursor(cursor: str) -> LedgerPosition:
    """The position a `next_cursor` of the ledger names (a cursor of the earlier form, without the
    page: from the first page)."""
    position = decode_cursor(cursor)
    if isinstance(position, list) and len(position) == 2:
        position = [0, *position]
    if isinstance(position, list) and len(position) == 3:
        page, applied_at, entry_id = position
        if isinstance(page, int) and page >= 0 and isinstance(applied_at, str) and isinstance(entry_id, str):
            return page, applied_at, entry_id
    raise invalid_cursor()


class StockList(Reply):
    items: list[ProductStockOut]
    next_cursor: str | None


# ---------------------------------------------------------------- allocations and availability
class AllocationItemBody(Request):
    product_id: ProductId
    quantity: PositiveQuantity


class PostAllocationBody(Request):
    allocation_id: ClientId
    order_id: ExternalId
    items: Annotated[list[AllocationItemBody], Field(min_length=1, max_length=MAX_ALLOCATION_ITEMS), EachProductOnce]

    def request(self) -> AllocationRequest:
        return AllocationRequest(
            allocation_id=self.allocation_id,
            order_id=self.order_id,
            items=tuple(AllocationLine(product_id=i.product_id, quantity=i.quantity) for i in self.items),
        )


class AllocationItemOut(Reply):
    product_id: str
    quantity: int  # requested
    open: int  # still held: shipments, handovers and releases lower it


class AllocationOut(Reply):
    location_id: str
    allocation_id: str
    order_id: str | None
    status: AllocationStatus
    items: list[AllocationItemOut]
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def of(cls, view: AllocationView) -> AllocationOut:
        allocation = view.allocation
        return cls(
            location_id=allocation.location_id,
            allocation_id=allocation.allocation_id,
            order_id=allocation.order_id,
            status=allocation.status,
            items=[
                AllocationItemOut(product_id=i.product_id, quantity=i.quantity, open=view.open.get(i.product_id, 0))
                for i in allocation.items
            ],
            created_at=allocation.created_at,
            updated_at=allocation.updated_at,
        )


class AvailabilityOut(Reply):
    product_id: str
    stock_on_hand: int
    allocated: int
    safety_stock: int
    available: int
    uncounted: bool
    version: int

    @classmethod
    def of(cls, figures: ProductAvailability) -> AvailabilityOut:
        return cls(**asdict(figures))


class AvailabilityList(Reply):
    items: list[AvailabilityOut]
    next_cursor: str | None
