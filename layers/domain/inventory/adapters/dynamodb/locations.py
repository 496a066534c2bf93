"""Locations: one item each (`keys.location_key`), all listed in one gsi1 partition.

The location item also carries what the switch and the imports guard on (`running_import_id`,
`open_mispick_count_ids`, `last_baseline_import_ms`) and which imports are visible, so that each
of those rules is one conditional write of this item; and `figures_version`, which the writes
that change every product's figures without writing the products (a figure setting, the switch)
add 1 to (docs/data-design.md, "Published versions").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import LOCATIONS_PARTITION, Key, location_key
from inventory.adapters.dynamodb.outbox import record_event
from inventory.adapters.dynamodb.table import Table, TableItems
from inventory.backoff import LOST_RACE, retried
from inventory.cursor import decode_cursor, encode_cursor, invalid_cursor
from inventory.errors import LocationTypeImmutable
from inventory.models import (
    FIGURE_SETTINGS,
    InventoryMaster,
    Location,
    LocationChanges,
    LocationType,
    OutboxEvent,
    Page,
    VisibleImport,
    epoch_ms,
    iso,
)
from inventory.types import LOCATION_ID_PATTERN, matches

_LOCATION_DEFAULTS: dict[str, Any] = {
    "name": None,
    "enabled": True,
    "trust_imported_stock": False,
    "default_safety_stock": 0,
    "allow_backorders": False,
}
FIGURES_VERSION = "figures_version"


def location_of(item: Mapping[str, Any]) -> Location:
    last_import = item.get("last_import")
    return Location(
        location_id=item["location_id"],
        type=LocationType(item["type"]),
        name=item.get("name"),
        enabled=item.get("enabled", True),
        trust_imported_stock=item.get("trust_imported_stock", False),
        default_safety_stock=item.get("default_safety_stock", 0),
        allow_backorders=item.get("allow_backorders", False),
        inventory_master=InventoryMaster(item.get("inventory_master", InventoryMaster.ERP.value)),
        master_switched_at=item.get("master_switched_at"),
        master_switched_by=item.get("master_switched_by"),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        last_import=last_import or None,
        running_import_id=item.get("running_import_id"),
        running_import_claimed_at=item.get("running_import_claimed_at"),
        erp_transactions_seq=item.get("erp_transactions_seq"),
        figures_version=item.get(FIGURES_VERSION, 0),
        last_baseline_import_at=item.get("last_baseline_import_at"),
        open_mispick_count_ids=frozenset(item.get("open_mispick_count_ids", set())),
        imports_before_switch=item.get("imports_before_switch"),
        import_seq=item.get("import_seq", 0),
        running_import_seq=item.get("running_import_seq"),
        running_import_through=item.get("running_import_through"),
        running_import_merged=item.get("running_import_merged"),
        visible_imports=tuple(
            VisibleImport.model_validate(meta)
            for _, meta in sorted(item.get("visible_imports", {}).items(), key=lambda entry: int(entry[0]))
        ),
    )


def created_if_absent(
    update: Update, location_id: str, location_type: LocationType, now: datetime, given: Mapping[str, Any] = {}
) -> Update:
    """What a write that may create the location sets (besides `updated_at`, which every write
    of the location sets): the `given` settings, every other attribute it starts with only where
    absent, and its revision (1 on creation). Its condition must hold the type to
    `location_type` or absent."""
    update.set("location_id", location_id).set("type", location_type.value, if_absent=True)
    update.set("gsi1pk", LOCATIONS_PARTITION).set("gsi1sk", location_id)
    update.set("created_at", iso(now), if_absent=True)
    # The only other write of inventory_master is the guarded switch; here it is only defaulted.
    update.set("inventory_master", InventoryMaster.ERP.value, if_absent=True)
    update.set("visible_imports", {}, if_absent=True)
    for field, default in _LOCATION_DEFAULTS.items():
        if field in given:
            update.set(field, given[field])
        elif default is not None:
            update.set(field, default, if_absent=True)
    return update.increment("revision")


def _stored_as(update: Update, settings: Mapping[str, Any]) -> str:
    """A condition: each of `settings` is stored with that value (absent counts as its default).
    With no parentheses around the whole (DynamoDB refuses redundant ones): the caller adds them."""
    if not settings:
        return update.exists("pk")
    conditions = []
    for field, value in settings.items():
        stored = update.equals(field, value)
        conditions.append([stored, update.absent(field)] if value == _LOCATION_DEFAULTS[field] else [stored])
    if len(conditions) == 1:
        return " OR ".join(conditions[0])
    return " AND ".join(f"({' OR '.join(c)})" if len(c) > 1 else c[0] for c in conditions)


def list_position(location_id: str) -> Key:
    """Where a page of the list that ends at `location_id` stops: its item's key in gsi1, as
    DynamoDB's LastEvaluatedKey holds it."""
    return {**location_key(location_id), "gsi1pk": LOCATIONS_PARTITION, "gsi1sk": location_id}


def list_cursor(location_id: str) -> str:
    """The `next_cursor` of a page of locations that ends at `location_id`."""
    return encode_cursor(list_position(location_id))


def listed_after(cursor: str) -> str:
    """The location a cursor of `list_cursor` ends at; InvalidInput for any other cursor, including
    one that merely has the fields of an index key (DynamoDB refuses a start key outside the query
    with a ValidationException, and takes one whose parts disagree as a place among the items)."""
    position = decode_cursor(cursor)
    location_id = position.get("gsi1sk") if isinstance(position, dict) else None
    if (
        not isinstance(location_id, str)
        or not matches(LOCATION_ID_PATTERN, location_id)
        or position != list_position(location_id)
    ):
        raise invalid_cursor()
    return location_id


def read_location(table: Table, location_id: str) -> Location | None:
    item = table.get(location_key(location_id))
    return location_of(item) if item else None


class Locations(TableItems):
    """Implements LocationRepository."""

    def put_location(self, location_id: str, changes: LocationChanges, now: datetime) -> tuple[Location, bool]:
        """One write when no figure setting changes (or the location is created): on the condition
        that the figure settings given are those stored. Otherwise a second write, which also adds 1
        to `figures_version`, on the condition that they are not (so a request that another one
        overtook with the same settings adds nothing): when both are refused, the settings changed
        in between, or the type differs, which a read tells apart."""
        given = {field: getattr(changes, field) for field in _LOCATION_DEFAULTS if getattr(changes, field) is not None}
        figures = {field: given[field] for field in FIGURE_SETTINGS if field in given}
        key = location_key(location_id)

        def attempt() -> dict[str, Any] | None:
            """The location's item after the write; {} when its type differs; None: try again."""
            update = created_if_absent(Update().set("updated_at", iso(now)), location_id, changes.type, now, given)
            same_type = update.equals("type", changes.type.value)
            unchanged = _stored_as(update, figures)
            item = self._table.update(update, key, f"{update.absent('pk')} OR ({same_type} AND {unchanged})")
            if item is not None:
                return item
            if figures:
                update = created_if_absent(Update().set("updated_at", iso(now)), location_id, changes.type, now, given)
                update.increment(FIGURES_VERSION)
                changed = f"{update.equals('type', changes.type.value)} AND NOT ({_stored_as(update, figures)})"
                if (item := self._table.update(update, key, changed)) is not None:
                    return item
                current = self._table.get(key)
                if current is None or current["type"] == changes.type.value:
                    return None  # the settings changed between the two writes: decide again
            return {}

        item = retried(attempt, LOST_RACE, f"location {location_id!r} changed on every attempt; try again")
        if not item:
            raise LocationTypeImmutable(
                f"location {location_id!r} exists with another type; a location's type never changes",
                details=[{"field": "body.type", "code": "immutable", "message": "type cannot change"}],
            )
        return location_of(item), item["revision"] == 1

    def get_location(self, location_id: str) -> Location | None:
        return read_location(self._table, location_id)

    def list_locations(self, limit: int, cursor: str | None) -> Page[Location]:
        request: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "gsi1pk"},
            "ExpressionAttributeValues": {":p": {"S": LOCATIONS_PARTITION}},
            "Limit": limit,
        }
        if cursor:
            request["ExclusiveStartKey"] = to_ddb(list_position(listed_after(cursor)))
        items, last = self._table.query(**request)
        return Page(
            items=[location_of(from_ddb(item)) for item in items],
            next_cursor=list_cursor(from_ddb(last)["gsi1sk"]) if last else None,
        )

    def claimed_locations(self) -> Iterator[Location]:
        # The list of locations (a few thousand at most, one gsi1 partition), read whole: the filter
        # only spares the answer the unclaimed ones; every item read is paid for (docs/data-design.md).
        items = self._table.query_all(
            IndexName="gsi1",
            KeyConditionExpression="#p = :p",
            FilterExpression="attribute_exists(#claim)",
            ExpressionAttributeNames={"#p": "gsi1pk", "#claim": "running_import_id"},
            ExpressionAttributeValues={":p": {"S": LOCATIONS_PARTITION}},
        )
        return (location_of(from_ddb(item)) for item in items)

    def mark_erp_transaction(self, location_id: str) -> bool:
        """Record that an inventory transaction is applied under the ERP master now (its epoch, the
        location's `import_seq`); False when the location is under platform master (or gone)."""
        update = Update()
        seq = f"if_not_exists({update.name('import_seq')}, {update.value(0)})"  # (no import claimed yet: 0)
        update.set_expression("erp_transactions_seq", seq).increment("revision")
        condition = update.equals("inventory_master", InventoryMaster.ERP.value)
        return self._table.update(update, location_key(location_id), condition, returns="NONE") is not None

    def switch_to_platform(
        self,
        location_id: str,
        *,
        now: datetime,
        caller: str,
        baseline_cutoff: datetime,
        event: OutboxEvent,
        baseline_seq: int | None = None,
    ) -> Location | None:
        key = location_key(location_id)
        update = Update()
        update.set("inventory_master", InventoryMaster.PLATFORM.value)
        update.set("master_switched_at", iso(now)).set("master_switched_by", caller).set("updated_at", iso(now))
        # Stock whose base comes from these imports is uncounted until a count covers it.
        update.copy("imports_before_switch", "import_seq")
        update.increment(FIGURES_VERSION)  # stock may become uncounted: every product's figures change
        update.increment("revision")
        record_event(update, key["pk"], event)
        condition = " AND ".join(
            [
                update.equals("inventory_master", InventoryMaster.ERP.value),
                update.equals("type", LocationType.STORE.value),
                update.absent("running_import_id"),
                update.absent("open_mispick_count_ids"),
                f"{update.name('last_baseline_import_ms')} >= {update.value(epoch_ms(baseline_cutoff))}",
                # no inventory transaction under the ERP since that import's claim
                f"({update.absent('erp_transactions_seq')} OR "
                f"{update.name('erp_transactions_seq')} < {update.value(baseline_seq or 0)})",
            ]
        )
        item = self._table.update(update, key, condition)
        return location_of(item) if item else None
