"""What this service publishes on the bus (SPEC.md section 5): one model of each event's `detail`.

The services write these details into the outbox with the change they report, and the relay
publishes them (completing a `Shipment Applied` part with the product's figures as it does). The
models are the contract: the JSON Schema files of the repository are generated from them, and
tests hold what the services publish to them. Unknown fields are refused, so that a field added
to an event without its model fails those tests.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from pydantic.json_schema import SkipJsonSchema

from inventory.messages import DetailType
from inventory.models import ImportKind, InventoryMaster, LedgerKind
from inventory.types import ClientId, ExternalId, LocationId, PositiveQuantity, ProductId, Quantity, StockLocation

StockLocationName = StockLocation

Count = Annotated[StrictInt, Field(ge=0)]
Figure = Annotated[StrictInt, Field(description="Whole units; stock on hand may be below 0")]


class Published(BaseModel):
    """What every event's detail carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(description="The version of this detail's schema")
    event_id: Annotated[StrictStr, Field(min_length=1, description="Unique per event: de-duplicate by it")]
    location_id: LocationId
    occurred_at: AwareDatetime


def _absent_unless_given(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # a whole event has no part fields, rather than null ones


PART_FIELDS = ("part_of", "part", "parts")
PartNumber = Annotated[StrictInt, Field(ge=1)] | SkipJsonSchema[None]


class Splittable(Published):
    """An event that can be larger than EventBridge takes (256 KB an entry). The relay then
    publishes it in parts: each an event of its own, with its own `event_id` (stable: publishing
    the event again gives the same parts with the same ids), every field of the whole event but the
    list named by `split_on`, and of that list a share, in order. Parts say which part of how many
    of which event they are (`part`, `parts`, `part_of`); a whole event has none of the three.
    Consumers can take each part as it comes (it holds all that the event says of its elements), or
    join the parts of one `part_of` by concatenating their lists in `part` order."""

    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {f: [o for o in PART_FIELDS if o != f] for f in PART_FIELDS}}
    )

    split_on: ClassVar[str]  # the list field that the parts share out

    part_of: (
        Annotated[StrictStr, Field(min_length=1, description="The `event_id` of the event this is a part of")]
        | SkipJsonSchema[None]
    ) = Field(default=None, json_schema_extra=_absent_unless_given)
    part: PartNumber = Field(
        default=None, description="This part's number, from 1", json_schema_extra=_absent_unless_given
    )
    parts: PartNumber = Field(
        default=None, description="How many parts the event has", json_schema_extra=_absent_unless_given
    )

    @model_validator(mode="after")
    def _a_part_says_all_of_what_it_is(self) -> Splittable:
        given = [self.part_of is not None, self.part is not None, self.parts is not None]
        if any(given) and not all(given):
            raise ValueError("a part has `part_of`, `part` and `parts`; a whole event none of them")
        if self.part is not None and self.parts is not None and self.part > self.parts:
            raise ValueError("`part` is at most `parts`")
        return self


class InventoryMasterSwitched(Published):
    """A store became platform master; it never goes back."""

    inventory_master: Literal[InventoryMaster.PLATFORM]
    previous_inventory_master: Literal[InventoryMaster.ERP]
    master_switched_at: AwareDatetime
    switched_by: Annotated[StrictStr, Field(description="The caller's identity")]


class ImportCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: Count
    applied: Count
    zeroed: Count = Field(description="Rows that held stock and that an initial or full count omitted: set to 0")


class StockImported(Published):
    """An import completed: its counts, not its products (their figures reach consumers through the
    next delta export)."""

    import_id: ClientId
    kind: ImportKind
    shipments_included_through: Annotated[StrictInt, Field(ge=0)] | None
    counts: ImportCounts


class AppliedProduct(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    quantity: Annotated[StrictInt, Field(lt=0, description="What the line removed from main stock")]
    stock_on_hand: Figure
    allocated: Count
    safety_stock: Count
    available: Count
    uncounted: StrictBool
    version: Annotated[
        StrictInt,
        Field(ge=0, description="Grows with every change of the product's figures: keep the highest per product"),
    ]
    warnings: list[Literal["unknown_product", "negative_stock_on_hand"]]


class ShipmentApplied(Published):
    """One part per line of a shipment or handover, with the product's figures as the relay found
    them when it published the part (they include the line). A part names one product, so it is
    never too large for the bus (its `part` and `parts` count the shipment's lines)."""

    source_event_id: ExternalId
    kind: Literal[LedgerKind.SHIPMENT, LedgerKind.HANDOVER]
    shipment_id: ExternalId
    logical_timestamp: Annotated[StrictInt, Field(ge=0)]
    part: Annotated[StrictInt, Field(ge=1)]
    parts: Annotated[StrictInt, Field(ge=1)]
    products: Annotated[list[AppliedProduct], Field(min_length=1)]


class RefusedItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    quantity: PositiveQuantity


class Shortage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    requested: PositiveQuantity
    available: Quantity
    uncounted: StrictBool


class AllocationRefused(Splittable):
    """An allocation from the bus asked for more than was available: nothing of it is held. When it
    is too large for the bus (long product ids of characters that JSON escapes), it comes in parts
    that share out its `shortages`, each with all the `items` (100 at most, which always fit)."""

    split_on: ClassVar[str] = "shortages"

    allocation_id: ClientId
    order_id: ExternalId
    items: Annotated[list[RefusedItem], Field(min_length=1)]
    shortages: Annotated[list[Shortage], Field(min_length=1)]


class TransactionItemFigures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    quantity: PositiveQuantity
    from_stock_location: StockLocationName | None
    to_stock_location: StockLocationName | None
    stock_on_hand: Figure
    stock_locations: Annotated[
        dict[StockLocationName, Figure], Field(description="The new quantity of each stock location the item moved")
    ]
    available: Count
    version: Annotated[
        StrictInt,
        Field(ge=0, description="Grows with every change of the product's figures: keep the highest per product"),
    ]


class InventoryTransactionCompleted(Splittable):
    """An inventory transaction was applied whole (under platform master), or recorded (under an
    ERP master: `pending_import`, its figures unchanged until the ERP's next import). Each item
    carries its product's figures right after the transaction. Too large for the bus (100 items of
    long product ids), it comes in parts that share out its `items`."""

    split_on: ClassVar[str] = "items"

    transaction_id: ClientId
    type: Literal["receiving", "transfer_out", "transfer_in", "adjustment", "return"]
    reason: ExternalId | None
    reference: ExternalId | None
    destination_location_id: LocationId | None
    source_location_id: LocationId | None
    inventory_master: InventoryMaster
    pending_import: StrictBool
    recorded_by: Annotated[StrictStr, Field(description="The caller's identity")]
    recorded_at: AwareDatetime
    items: Annotated[list[TransactionItemFigures], Field(min_length=1)]


class CycleCountCompleted(Published):
    """One part per result of a cycle count (a product in one stock location), written with the
    result it reports (`part` of `parts`, the count's results in order): the counted figure, the
    system figure of that moment and the variance, and the product's figures right after. Under an
    ERP master (`pending_import`) the result is recorded and the figures are unchanged."""

    count_id: ClientId
    reason: Literal["scheduled", "mispick", "initial"]
    inventory_master: InventoryMaster
    pending_import: StrictBool
    part: Annotated[StrictInt, Field(ge=1)]
    parts: Annotated[StrictInt, Field(ge=1)]
    product_id: ProductId
    stock_location: StockLocationName
    counted: Quantity
    system: Figure
    variance: Figure
    stock_on_hand: Figure
    available: Count
    uncounted: StrictBool
    version: Annotated[
        StrictInt,
        Field(ge=0, description="Grows with every change of the product's figures: keep the highest per product"),
    ]


class ExportedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    location_id: LocationId
    uri: Annotated[StrictStr, Field(description="s3://<export bucket>/availability/<export_id>/<location_id>.jsonl.gz")]
    rows: Count
    sha256: Annotated[StrictStr, Field(pattern="^[0-9a-f]{64}$", description="Of the file's bytes (gzip)")]
    as_of: AwareDatetime
    since_export_id: Annotated[
        ClientId | None, Field(description="The export a delta file is relative to; null for a full file")
    ]


class AvailabilityExported(Splittable):
    """Once per export, when every location's file is written: where each file is, with its rows,
    checksum and the point it reflects. `location_id` is the location when the export covers one,
    null when it covers several. Parts share out `locations`."""

    split_on: ClassVar[str] = "locations"

    location_id: LocationId | None  # type: ignore[assignment]
    export_id: ClientId
    mode: Literal["full", "delta"]
    status: Literal["completed", "failed"]
    manifest_uri: StrictStr
    failed_location_ids: list[LocationId]
    locations: list[ExportedFile]


PUBLISHED: dict[DetailType, type[Published]] = {
    DetailType.STOCK_IMPORTED: StockImported,
    DetailType.MASTER_SWITCHED: InventoryMasterSwitched,
    DetailType.SHIPMENT_APPLIED: ShipmentApplied,
    DetailType.ALLOCATION_REFUSED: AllocationRefused,
    DetailType.TRANSACTION_COMPLETED: InventoryTransactionCompleted,
    DetailType.COUNT_COMPLETED: CycleCountCompleted,
    DetailType.AVAILABILITY_EXPORTED: AvailabilityExported,
}
