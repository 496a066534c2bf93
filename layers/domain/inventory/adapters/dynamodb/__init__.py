"""The one DynamoDB adapter: keys, conditions, update expressions, pagination and error mapping.

Key design (docs/data-design.md has every access pattern and its cost):

    location        pk LOC#<location_id>   sk LOCATION           gsi1pk LOCATIONS  gsi1sk <location_id>
    import record   pk LOC#<location_id>   sk IMPORT#<import_id>
    cycle count     pk LOC#<location_id>   sk COUNT#<count_id>
    allocation      pk LOC#<location_id>   sk ALLOC#<allocation_id>
                    pending from the API:                gsi1pk ABANDON#<nn>  gsi1sk <abandon_at>#<location_id>
    applied event   pk EVT#<location_id>#S<nn>                sk EVENT#<event_id>
    import row      pk IMP#<location_id>#<import seq>#S<nn>   sk P#<product>#<stock location>
    counters        pk LOC#<location_id>#S<nn>                sk P#<product>

Every item that reports a change carries the event in an attribute of its own (`E#<event id>`),
written in the same conditional update as the change, which also sets `outbox_pk` (the sparse
`outbox` index is keyed by it and the item's `sk`: the item is there until the relay has published
everything it holds) and adds 1 to the item's `version`, so that the relay only takes the item out
of the index when it did not change after the relay's read. A product's ledger entries are
attributes too (`L#<entry id>`): a shipment line can then create or extend the counters item in
one write without reading it first. No multi-item transaction is used anywhere: each guarded
change is one single-item conditional write.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inventory.errors import (
    Conflict,
    CountIdReused,
    ImportIdReused,
    ImportInProgress,
    InvalidInput,
    ItemTooLarge,
    LocationTypeImmutable,
    NotFound,
    TemporarilyUnavailable,
)
from inventory.models import (
    STOCK_LOCATIONS,
    Allocation,
    AllocationStatus,
    CountersChange,
    CountReason,
    CountStatus,
    CycleCount,
    ImportCounts,
    ImportRecord,
    ImportStatus,
    InventoryMaster,
    LedgerEntry,
    Location,
    LocationChanges,
    LocationType,
    OpenAllocation,
    OutboxEvent,
    Page,
    ProductCounters,
    StockRow,
    VisibleImport,
    epoch_ms,
    iso,
    product_order,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

OUTBOX_SHARDS = 8
PRODUCT_SHARDS = 32
BATCH_WRITE_ITEMS = 25  # DynamoDB's limit per BatchWriteItem
BATCH_GET_ITEMS = 100  # and per BatchGetItem
WRITE_THREADS = 8
LOCATIONS_PARTITION = "LOCATIONS"
PENDING_SHARDS = 8  # pending allocations are listed by `abandon_at`, over this many gsi1 partitions
EVENT_PREFIX = "E#"  # an outbox event, by event id
LEDGER_PREFIX = "L#"  # a ledger entry of a product's counters, by entry id and source hash: L#<id>#<hash>
ALLOCATION_PREFIX = "A#"  # what an open allocation holds of a product, by allocation id
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}
_LOCATION_DEFAULTS: dict[str, Any] = {
    "name": None,
    "enabled": True,
    "trust_imported_stock": False,
    "default_safety_stock": 0,
    "allow_backorders": False,
}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def location_key(location_id: str) -> dict[str, str]:
    return {"pk": f"LOC#{location_id}", "sk": "LOCATION"}


def import_key(location_id: str, import_id: str) -> dict[str, str]:
    return {"pk": f"LOC#{location_id}", "sk": f"IMPORT#{import_id}"}


def count_key(location_id: str, count_id: str) -> dict[str, str]:
    return {"pk": f"LOC#{location_id}", "sk": f"COUNT#{count_id}"}


def product_shard(product_id: str) -> int:
    return _shard_of(product_order(product_id))


def _shard_of(order: str) -> int:
    return zlib.crc32(order.encode()) % PRODUCT_SHARDS


def import_row_key(location_id: str, seq: int, product_id: str, stock_location: str) -> dict[str, str]:
    order = product_order(product_id)
    return {"pk": f"IMP#{location_id}#{seq}#S{_shard_of(order):02d}", "sk": f"P#{order}#{stock_location}"}


def allocation_key(location_id: str, allocation_id: str) -> dict[str, str]:
    return {"pk": f"LOC#{location_id}", "sk": f"ALLOC#{allocation_id}"}


def event_key(location_id: str, event_id: str) -> dict[str, str]:
    shard = zlib.crc32(event_id.encode()) % PRODUCT_SHARDS  # a location's events over 32 partitions
    return {"pk": f"EVT#{location_id}#S{shard:02d}", "sk": f"EVENT#{event_id}"}


def counters_key(location_id: str, product_id: str) -> dict[str, str]:
    return {"pk": f"LOC#{location_id}#S{product_shard(product_id):02d}", "sk": f"P#{product_order(product_id)}"}


def _stock_row(item: Mapping[str, Any]) -> StockRow:
    _, encoded, stock_location = item["sk"]["S"].split("#")
    return StockRow(product_id=unquote(encoded), stock_location=stock_location, quantity=int(item["q"]["N"]))


def outbox_shard(pk: str) -> str:
    return f"OUTBOX#{zlib.crc32(pk.encode()) % OUTBOX_SHARDS}"


def _attribute_value(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value: what boto3's TypeSerializer makes of the types
    stored here, in a fraction of its time (it runs for every attribute of every request)."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int or kind is Decimal:
        return {"N": str(value)}
    if kind is dict:
        return {"M": {k: _attribute_value(v) for k, v in value.items()}}
    if kind is list or kind is tuple:
        return {"L": [_attribute_value(v) for v in value]}
    if value is None:
        return {"NULL": True}
    return dict(_serializer.serialize(value))  # sets, bytes, and anything else: as boto3 does it


def _to_ddb(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _attribute_value(v) for k, v in values.items()}


def _python_value(value: Mapping[str, Any]) -> Any:
    """The inverse of `_attribute_value`; numbers become int (or float when they have decimals)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return int(inner) if inner.lstrip("-").isdigit() else float(inner)
    if kind == "M":
        return {k: _python_value(v) for k, v in inner.items()}
    if kind == "BOOL":
        return inner
    if kind == "L":
        return [_python_value(v) for v in inner]
    if kind == "NULL":
        return None
    return _plain(_deserializer.deserialize(value))  # type: ignore[arg-type]  # a set or bytes


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def _from_ddb(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _python_value(v) for k, v in item.items()}


class _Update:
    """Builds one UpdateItem call; every attribute name goes through ExpressionAttributeNames."""

    def __init__(self) -> None:
        self._set: list[str] = []
        self._remove: list[str] = []
        self._add: list[str] = []
        self._delete: list[str] = []
        self.names: dict[str, str] = {}
        self._placeholders: dict[str, str] = {}
        self._simple: dict[tuple[type, Any], str] = {}
        self.values: dict[str, Any] = {}

    def name(self, *path: str) -> str:
        """The placeholder path for an attribute path (one placeholder per distinct name)."""
        placeholders = []
        for part in path:
            if part not in self._placeholders:
                self._placeholders[part] = f"#n{len(self._placeholders)}"
                self.names[self._placeholders[part]] = part
            placeholders.append(self._placeholders[part])
        return ".".join(placeholders)

    def value(self, value: Any) -> str:
        """The placeholder of a value (one per distinct number or string)."""
        simple = type(value) in (int, str)
        if simple and (type(value), value) in self._simple:
            return self._simple[(type(value), value)]
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        if simple:
            self._simple[(type(value), value)] = placeholder
        return placeholder

    def set(self, attr: str, value: Any, *, if_absent: bool = False) -> _Update:
        name = self.name(attr)
        expr = f"if_not_exists({name}, {self.value(value)})" if if_absent else self.value(value)
        self._set.append(f"{name} = {expr}")
        return self

    def set_path(self, path: Sequence[str], value: Any) -> _Update:
        self._set.append(f"{self.name(*path)} = {self.value(value)}")
        return self

    def copy(self, attr: str, source: str) -> _Update:
        """SET attr = source, in the same write (the value as it is when the write applies)."""
        self._set.append(f"{self.name(attr)} = {self.name(source)}")
        return self

    def increment(self, attr: str, by: int = 1) -> _Update:
        """ADD: an absent attribute counts as 0."""
        self._add.append(f"{self.name(attr)} {self.value(by)}")
        return self

    def remove(self, *path: str) -> _Update:
        self._remove.append(self.name(*path))
        return self

    def add_to_set(self, attr: str, members: Collection[str]) -> _Update:
        self._add.append(f"{self.name(attr)} {self.value(set(members))}")
        return self

    def delete_from_set(self, attr: str, members: Collection[str]) -> _Update:
        self._delete.append(f"{self.name(attr)} {self.value(set(members))}")
        return self

    def record_event(self, pk: str, event: OutboxEvent) -> _Update:
        """Put `event` in the item's outbox, in this same write, and the item in the outbox index."""
        self.set(EVENT_PREFIX + event.event_id, _encode_event(event))
        self.increment("version")  # the relay's guard: the item leaves the index only if unchanged
        self.set("outbox_pk", outbox_shard(pk))  # the same for every write of the item
        return self

    def expression(self) -> str:
        clauses = []
        for keyword, parts in (
            ("SET", self._set),
            ("REMOVE", self._remove),
            ("ADD", self._add),
            ("DELETE", self._delete),
        ):
            if parts:
                clauses.append(f"{keyword} {', '.join(parts)}")
        return " ".join(clauses)

    def request(self, table: str, key: Mapping[str, str], condition: str | None = None, **extra: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": table,
            "Key": _to_ddb(key),
            "UpdateExpression": self.expression(),
            "ExpressionAttributeNames": self.names,
            **extra,
        }
        if self.values:
            request["ExpressionAttributeValues"] = _to_ddb(self.values)
        if condition:
            request["ConditionExpression"] = condition
        return request


def _event_attributes(pk: str, event: OutboxEvent | None) -> dict[str, Any]:
    """What `record_event` sets, for an item written whole (which sets its own `version`)."""
    if event is None:
        return {}
    return {
        EVENT_PREFIX + event.event_id: _encode_event(event),
        "outbox_pk": outbox_shard(pk),
    }


def _encode_event(event: OutboxEvent) -> dict[str, str]:
    detail = {"event_id": event.event_id, **event.detail}
    return {
        "detail_type": event.detail_type,
        "occurred_at": iso(event.occurred_at),
        "detail": json.dumps(detail, separators=(",", ":"), sort_keys=True),
    }


def _decode_event(event_id: str, stored: Mapping[str, Any]) -> OutboxEvent:
    return OutboxEvent(
        event_id=event_id,
        detail_type=stored["detail_type"],
        occurred_at=datetime.fromisoformat(stored["occurred_at"]),
        detail=json.loads(stored["detail"]),
    )


@contextmanager
def _translated() -> Iterator[None]:
    """Throttling and outages become TemporarilyUnavailable (retried by the caller or its queue); a
    write past the item size limit, which no retry fixes, ItemTooLarge."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _RETRYABLE:
            raise TemporarilyUnavailable(f"DynamoDB is unavailable for now ({code})") from error
        if code == "ValidationException" and "exceeded the maximum allowed size" in str(error):
            # DynamoDB's only signal for it (the code covers every invalid request).
            raise ItemTooLarge(
                "the write would take a stored record past DynamoDB's 400 KB item limit (a product's "
                "ledger at one location holds about 2,800 entries)"
            ) from error
        raise
    except BotoCoreError as error:
        raise TemporarilyUnavailable(f"DynamoDB could not be reached ({type(error).__name__})") from error


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _location(item: Mapping[str, Any]) -> Location:
    last_import = item.get("last_import")
    return Location(
        location_id=item["location_id"],
        type=LocationType(item["type"]),
        name=item.get("name"),
        enabled=item.get("enabled", True),
        trust_imported_stock=item.get("trust_imported_stock", False),
        default_safety_stock=item.get("default_safety_stock", 0),
        allow_backorders=item.get("allow_backorders", False),
        inventory_master=InventoryMaster(item.get("inventory_master", "erp")),
        master_switched_at=item.get("master_switched_at"),
        master_switched_by=item.get("master_switched_by"),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        last_import=last_import or None,
        running_import_id=item.get("running_import_id"),
        last_baseline_import_at=item.get("last_baseline_import_at"),
        open_mispick_count_ids=frozenset(item.get("open_mispick_count_ids", set())),
        imports_before_switch=item.get("imports_before_switch"),
        visible_imports=tuple(
            VisibleImport.model_validate(meta)
            for _, meta in sorted(item.get("visible_imports", {}).items(), key=lambda entry: int(entry[0]))
        ),
    )


def _import_record(item: Mapping[str, Any]) -> ImportRecord:
    fields = {name: item[name] for name in ImportRecord.model_fields if name in item}
    return ImportRecord.model_validate(fields)


def _cycle_count(item: Mapping[str, Any]) -> CycleCount:
    fields = {name: item[name] for name in CycleCount.model_fields if name in item}
    return CycleCount.model_validate(fields)


def _entry_name(entry: LedgerEntry) -> str:
    """An entry's attribute: its id and the hash of what caused it (the last '#' separates them)."""
    return f"{LEDGER_PREFIX}{entry.entry_id}#{entry.source_hash or ''}"


def _stored_entry(entry: LedgerEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude={"entry_id", "source_hash"}, exclude_none=True)


def _stored_allocation(allocation: OpenAllocation) -> dict[str, Any]:
    return allocation.model_dump(mode="json", exclude={"allocation_id"}, exclude_none=True)


def _counters(item: Mapping[str, Any]) -> ProductCounters:
    ledger, allocations = [], []
    for name, value in item.items():
        if name.startswith(LEDGER_PREFIX):
            entry_id, _, source_hash = name.removeprefix(LEDGER_PREFIX).rpartition("#")
            stored = {"entry_id": entry_id, "source_hash": source_hash or None, **value}
            ledger.append(LedgerEntry.model_validate(stored))
        elif name.startswith(ALLOCATION_PREFIX):
            allocations.append(
                OpenAllocation.model_validate({"allocation_id": name.removeprefix(ALLOCATION_PREFIX), **value})
            )
    return ProductCounters(
        product_id=unquote(item["sk"].removeprefix("P#")),
        exists=True,
        version=item.get("version", 0),
        stock_version=item.get("stock_version", 0),
        ledger=tuple(sorted(ledger, key=lambda e: (e.applied_at, e.entry_id))),
        allocations=tuple(sorted(allocations, key=lambda a: (a.received, a.allocation_id))),
    )


def _allocation(item: Mapping[str, Any]) -> Allocation:
    fields = {name: item[name] for name in Allocation.model_fields if name in item}
    return Allocation.model_validate(fields)


class DynamoDbRepository:
    """Implements LocationRepository, ImportRepository, CycleCountRepository and OutboxStore."""

    shards = OUTBOX_SHARDS
    product_shards = PRODUCT_SHARDS

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        # Created on first use, so that test fakes and local endpoints are in place by then.
        if self._client is None:
            config = Config(
                retries={"mode": "standard", "max_attempts": 8},
                connect_timeout=2,
                read_timeout=5,
                tcp_keepalive=True,
            )
            self._client = boto3.client("dynamodb", config=config)
        return self._client

    # ------------------------------------------------------------ plumbing
    def _get(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        with _translated():
            response = self.client.get_item(TableName=self._table, Key=_to_ddb(key), ConsistentRead=True)
        item = response.get("Item")
        return _from_ddb(item) if item else None

    def _get_many(self, keys: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """The items found at `keys` (distinct), as DynamoDB returns them, by consistent
        BatchGetItem (100 keys each; what it leaves unprocessed is asked again)."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_ITEMS):
            pending: dict[str, Any] = {
                self._table: {
                    "Keys": [_to_ddb(k) for k in keys[start : start + BATCH_GET_ITEMS]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(10):
                with _translated():
                    response = self.client.batch_get_item(RequestItems=pending)
                items += response.get("Responses", {}).get(self._table, [])
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.random())  # noqa: S311 - jitter, not secrets
            else:
                raise TemporarilyUnavailable("DynamoDB kept part of a read unprocessed; try again")
        return items

    def _update(
        self, update: _Update, key: Mapping[str, str], condition: str | None = None, returns: str = "ALL_NEW"
    ) -> dict[str, Any] | None:
        """Apply; the item after (or before, with returns="ALL_OLD"), or None when the condition refused."""
        request = update.request(self._table, key, condition, ReturnValues=returns)
        try:
            with _translated():
                response = self.client.update_item(**request)
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise
        return _from_ddb(response.get("Attributes", {}))

    def _put_new(self, item: Mapping[str, Any]) -> bool:
        """Put an item that must not exist yet; False when it does."""
        try:
            with _translated():
                self.client.put_item(
                    TableName=self._table,
                    Item=_to_ddb({k: v for k, v in item.items() if v is not None}),
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": "pk"},
                )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    # ------------------------------------------------------------ locations
    def put_location(self, location_id: str, changes: LocationChanges, now: datetime) -> tuple[Location, bool]:
        update = _Update()
        update.set("location_id", location_id).set("type", changes.type.value)
        update.set("gsi1pk", LOCATIONS_PARTITION).set("gsi1sk", location_id)
        update.set("created_at", iso(now), if_absent=True).set("updated_at", iso(now))
        # The only other write of inventory_master is the guarded switch; here it is only defaulted.
        update.set("inventory_master", InventoryMaster.ERP.value, if_absent=True)
        update.set("visible_imports", {}, if_absent=True)
        update.increment("revision")
        for field, default in _LOCATION_DEFAULTS.items():
            value = getattr(changes, field)
            if value is not None:
                update.set(field, value)
            elif default is not None:
                update.set(field, default, if_absent=True)
        condition = (
            f"attribute_not_exists({update.name('pk')}) OR {update.name('type')} = {update.value(changes.type.value)}"
        )
        item = self._update(update, location_key(location_id), condition)
        if item is None:
            raise LocationTypeImmutable(
                f"location {location_id!r} exists with another type; a location's type never changes",
                details=[{"field": "body.type", "code": "immutable", "message": "type cannot change"}],
            )
        return _location(item), item["revision"] == 1

    def get_location(self, location_id: str) -> Location | None:
        item = self._get(location_key(location_id))
        return _location(item) if item else None

    def list_locations(self, limit: int, cursor: str | None) -> Page[Location]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "gsi1pk"},
            "ExpressionAttributeValues": {":p": {"S": LOCATIONS_PARTITION}},
            "Limit": limit,
        }
        if cursor:
            request["ExclusiveStartKey"] = _to_ddb(_decode_cursor(cursor, {"pk", "sk", "gsi1pk", "gsi1sk"}))
        with _translated():
            response = self.client.query(**request)
        items = [_location(_from_ddb(item)) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return Page(items=items, next_cursor=_encode_cursor(_from_ddb(last)) if last else None)

    def switch_to_platform(
        self, location_id: str, *, now: datetime, caller: str, baseline_cutoff: datetime, event: OutboxEvent
    ) -> Location | None:
        key = location_key(location_id)
        update = _Update()
        update.set("inventory_master", InventoryMaster.PLATFORM.value)
        update.set("master_switched_at", iso(now)).set("master_switched_by", caller).set("updated_at", iso(now))
        # Stock whose base comes from these imports is uncounted until a count covers it.
        update.copy("imports_before_switch", "import_seq")
        update.increment("revision")
        update.record_event(key["pk"], event)
        condition = " AND ".join(
            [
                f"{update.name('inventory_master')} = {update.value(InventoryMaster.ERP.value)}",
                f"{update.name('type')} = {update.value(LocationType.STORE.value)}",
                f"attribute_not_exists({update.name('running_import_id')})",
                f"attribute_not_exists({update.name('open_mispick_count_ids')})",
                f"{update.name('last_baseline_import_ms')} >= {update.value(epoch_ms(baseline_cutoff))}",
            ]
        )
        item = self._update(update, key, condition)
        return _location(item) if item else None

    # ------------------------------------------------------------ imports
    def begin_import(self, record: ImportRecord) -> ImportRecord:
        key = location_key(record.location_id)
        if self._get(import_key(record.location_id, record.import_id)) is not None:
            raise ImportIdReused(f"import {record.import_id!r} exists already")
        claim = _Update()
        claim.set("running_import_id", record.import_id)
        claim.set("last_import", record.summary().model_dump(mode="json", exclude_none=True))
        claim.set("updated_at", iso(record.accepted_at))
        claim.increment("import_seq")
        condition = f"attribute_exists({claim.name('pk')}) AND attribute_not_exists({claim.name('running_import_id')})"
        before = self._update(claim, key, condition, returns="ALL_OLD")
        if before is None:
            location = self.get_location(record.location_id)
            if location is None:
                raise NotFound(f"location {record.location_id!r} does not exist")
            raise ImportInProgress(f"import {location.running_import_id!r} is still running for this location")
        record = record.model_copy(update={"seq": int(before.get("import_seq", 0)) + 1})
        key_of_record = import_key(record.location_id, record.import_id)
        if not self._put_new({**key_of_record, "entity": "import", **record.model_dump(mode="json")}):
            # Another request created the same import id in between: give the location back as it was.
            release = _Update().remove("running_import_id")
            if before.get("last_import"):
                release.set("last_import", before["last_import"])
            else:
                release.remove("last_import")
            self._update(release, key, f"{release.name('running_import_id')} = {release.value(record.import_id)}")
            raise ImportIdReused(f"import {record.import_id!r} exists already")
        return record

    def record_progress(self, location_id: str, import_id: str, *, written_through_line: int) -> None:
        update = _Update().set("status", ImportStatus.RUNNING.value).set("written_through_line", written_through_line)
        condition = f"{update.name('status')} IN ({update.value('accepted')}, {update.value('running')})"
        if self._update(update, import_key(location_id, import_id), condition) is None:
            raise Conflict(f"import {import_id!r} is no longer running")

    def write_import_rows(self, location_id: str, seq: int, rows: Sequence[StockRow]) -> None:
        items = []
        for row in rows:  # the hot loop of a 1,000,000-row import: attribute values built directly
            key = import_row_key(location_id, seq, row.product_id, row.stock_location)
            item = {"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}, "q": {"N": str(row.quantity)}}
            items.append({"PutRequest": {"Item": item}})
        batches = [items[start : start + BATCH_WRITE_ITEMS] for start in range(0, len(items), BATCH_WRITE_ITEMS)]
        if len(batches) <= 1:
            for batch in batches:
                self._write_batch(batch)
            return
        with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, len(batches))) as pool:
            list(pool.map(self._write_batch, batches))

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        """One BatchWriteItem, retrying what DynamoDB left unprocessed, with jittered backoff."""
        pending: dict[str, Any] = {self._table: requests}
        for attempt in range(10):
            with _translated():
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.random())  # noqa: S311 - jitter, not secrets
        raise TemporarilyUnavailable(
            "DynamoDB kept part of a batch unprocessed; the import resumes from its checkpoint"
        )

    def complete_import(
        self,
        location_id: str,
        import_id: str,
        *,
        completed_at: datetime,
        counts: ImportCounts,
        event: OutboxEvent | None = None,
    ) -> ImportRecord:
        record = self._finish_import(
            location_id, import_id, ImportStatus.COMPLETED, completed_at, counts=counts.model_dump()
        )
        release = self._release(record)
        visible = VisibleImport(
            seq=record.seq or 0,
            import_id=record.import_id,
            kind=record.kind,
            shipments_included_through=record.shipments_included_through,
            accepted_at=record.accepted_at,
            completed_at=completed_at,
        ).model_dump(mode="json")
        if record.kind.is_baseline:
            # A whole-location import supersedes every earlier one: readers need only it, and later ones.
            release.set("visible_imports", {str(record.seq): visible})
            release.set("last_baseline_import_at", iso(completed_at))
            release.set("last_baseline_import_ms", epoch_ms(completed_at))
        else:
            release.set_path(("visible_imports", str(record.seq)), visible)
        if event is not None:
            release.record_event(location_key(location_id)["pk"], event)
        self._apply_release(record, release)
        return record

    def fail_import(
        self,
        location_id: str,
        import_id: str,
        *,
        failed_at: datetime,
        errors: list[dict[str, object]],
        counts: ImportCounts | None = None,
    ) -> ImportRecord:
        fields: dict[str, Any] = {"errors": errors}
        if counts is not None:
            fields["counts"] = counts.model_dump()
        record = self._finish_import(location_id, import_id, ImportStatus.FAILED, failed_at, **fields)
        self._apply_release(record, self._release(record))
        return record

    def _finish_import(
        self, location_id: str, import_id: str, status: ImportStatus, at: datetime, **fields: Any
    ) -> ImportRecord:
        key = import_key(location_id, import_id)
        update = _Update().set("status", status.value).set("completed_at", iso(at))
        for name, value in fields.items():
            update.set(name, value)
        unfinished = f"{update.name('status')} IN ({update.value('accepted')}, {update.value('running')})"
        item = self._update(update, key, f"attribute_exists({update.name('pk')}) AND {unfinished}")
        if item is None:
            existing = self._get(key)
            if existing is None:
                raise NotFound(f"import {import_id!r} does not exist")
            if existing["status"] != status.value:
                raise Conflict(f"import {import_id!r} has already ended as {existing['status']}")
            item = existing  # a retry after a crash: finish the release below
        return _import_record(item)

    @staticmethod
    def _release(record: ImportRecord) -> _Update:
        update = _Update().remove("running_import_id")
        update.set("last_import", record.summary().model_dump(mode="json", exclude_none=True))
        return update.set("updated_at", iso(record.completed_at or record.accepted_at))

    def _apply_release(self, record: ImportRecord, update: _Update) -> None:
        condition = f"{update.name('running_import_id')} = {update.value(record.import_id)}"
        self._update(update, location_key(record.location_id), condition)

    def get_import(self, location_id: str, import_id: str) -> ImportRecord | None:
        item = self._get(import_key(location_id, import_id))
        return _import_record(item) if item else None

    def import_rows_of_shard(self, location_id: str, seq: int, shard: int) -> Iterator[StockRow]:
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": "pk"},
                "ExpressionAttributeValues": _to_ddb({":pk": f"IMP#{location_id}#{seq}#S{shard:02d}"}),
                "ConsistentRead": True,
            }
            if start:
                request["ExclusiveStartKey"] = start
            with _translated():
                response = self.client.query(**request)
            yield from (_stock_row(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def _products_after(self, pk: str, after_product: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Items of partition `pk` past every item of `after_product`, in key (product) order."""
        names = {"#pk": "pk"}
        values: dict[str, Any] = {":pk": pk}
        condition = "#pk = :pk"
        if after_product is not None:
            names["#sk"] = "sk"
            values[":after"] = f"P#{product_order(after_product)}#\uffff"
            condition += " AND #sk > :after"
        with _translated():
            response = self.client.query(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_ddb(values),
                ConsistentRead=True,
                Limit=limit,
            )
        return response.get("Items", []), "LastEvaluatedKey" in response

    def import_rows_page(
        self, location_id: str, seq: int, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[StockRow], bool]:
        items, more = self._products_after(f"IMP#{location_id}#{seq}#S{shard:02d}", after_product, limit)
        return [_stock_row(item) for item in items], more

    # ------------------------------------------------------------ product counters
    def counters_of(self, location_id: str, product_id: str) -> ProductCounters:
        item = self._get(counters_key(location_id, product_id))
        return _counters(item) if item else ProductCounters(product_id=product_id)

    def product_states(
        self, location_id: str, wanted: Mapping[str, Sequence[int]]
    ) -> dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]]:
        """Each wanted product's counters and its rows in the imports listed for it, by consistent
        BatchGetItem (their keys are all known: one row per stock location type and import)."""
        counters_of: dict[tuple[str, str], str] = {}  # the key of each counters item: its product
        keys = []
        for product_id, seqs in wanted.items():
            counters = counters_key(location_id, product_id)
            counters_of[(counters["pk"], counters["sk"])] = product_id
            keys.append(counters)
            keys += [
                import_row_key(location_id, seq, product_id, stock_location)
                for seq in seqs
                for stock_location in STOCK_LOCATIONS
            ]
        items = self._get_many(keys)
        found: dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]] = {
            product_id: (ProductCounters(product_id=product_id), {seq: [] for seq in seqs})
            for product_id, seqs in wanted.items()
        }
        for item in items:
            counters_product = counters_of.get((item["pk"]["S"], item["sk"]["S"]))
            if counters_product is not None:
                found[counters_product] = (_counters(_from_ddb(item)), found[counters_product][1])
            else:
                row = _stock_row(item)
                found[row.product_id][1][int(item["pk"]["S"].split("#")[2])].append(row)
        for _, rows in found.values():
            for seq_rows in rows.values():
                seq_rows.sort(key=lambda r: r.stock_location)
        return found

    def counters_page(
        self, location_id: str, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[ProductCounters], bool]:
        items, more = self._products_after(f"LOC#{location_id}#S{shard:02d}", after_product, limit)
        return [_counters(_from_ddb(item)) for item in items], more

    def change_counters(self, location_id: str, change: CountersChange) -> bool:
        expected, entry = change.expected, change.entry
        key = counters_key(location_id, expected.product_id)
        allocated_delta = sum(
            (new.quantity if new else 0) - (old.quantity if (old := expected.allocation(allocation_id)) else 0)
            for allocation_id, new in change.allocations.items()
        )
        if not expected.exists:  # the product's first change writes the whole item
            item: dict[str, Any] = {
                **key,
                "version": 1,
                "stock_version": 1 if entry else 0,
                "allocated": allocated_delta or None,  # absent when nothing is allocated (see append_entry)
                **{ALLOCATION_PREFIX + a: _stored_allocation(new) for a, new in change.allocations.items() if new},
                **({_entry_name(entry): _stored_entry(entry)} if entry else {}),
                **_event_attributes(key["pk"], change.event),
            }
            return self._put_new(item)
        update = _Update()
        if change.open_limit is not None:  # an opening: concurrent openings do not refuse each other
            allocated = update.name("allocated")
            conditions = [
                f"{update.name('stock_version')} = {update.value(expected.stock_version)}",
                f"(attribute_not_exists({allocated}) OR {allocated} <= {update.value(change.open_limit)})",
                *(f"attribute_not_exists({update.name(ALLOCATION_PREFIX + a)})" for a in change.allocations),
            ]
        else:
            conditions = [f"{update.name('version')} = {update.value(expected.version)}"]
        if entry:
            update.set(_entry_name(entry), _stored_entry(entry)).increment("stock_version")
        for allocation_id, new in change.allocations.items():
            if new:
                update.set(ALLOCATION_PREFIX + allocation_id, _stored_allocation(new))
            else:
                update.remove(ALLOCATION_PREFIX + allocation_id)
        for pruned in change.pruned:
            update.remove(_entry_name(pruned))
        if change.open_limit is None and allocated_delta and expected.allocated + allocated_delta == 0:
            update.remove("allocated")  # the version guard makes the total exact
        elif allocated_delta:
            update.increment("allocated", allocated_delta)
        if change.event:
            update.record_event(key["pk"], change.event)  # which adds 1 to `version`
        else:
            update.increment("version")
        return self._update(update, key, " AND ".join(conditions), returns="NONE") is not None

    def append_entry(self, location_id: str, product_id: str, entry: LedgerEntry, event: OutboxEvent) -> bool:
        key = counters_key(location_id, product_id)
        update = _Update().set(_entry_name(entry), _stored_entry(entry)).increment("stock_version")
        update.record_event(key["pk"], event)  # which adds 1 to `version`
        # `allocated` is absent exactly when nothing of the product is allocated. The entry needs no
        # guard of its own: written again, it is the same attribute (see the port), and the same id
        # with another body is another attribute.
        condition = f"attribute_not_exists({update.name('allocated')})"
        return self._update(update, key, condition, returns="NONE") is not None

    # ------------------------------------------------------------ applied events
    def claim_event(self, location_id: str, event_id: str, body_hash: str, keep_until: datetime) -> str | None:
        key = event_key(location_id, event_id)
        # expires_at is the table's TTL attribute: DynamoDB deletes the record some time after it.
        if self._put_new({**key, "body_hash": body_hash, "expires_at": int(keep_until.timestamp())}):
            return None
        item = self._get(key)
        return str(item["body_hash"]) if item else None

    # ------------------------------------------------------------ allocations
    def get_allocation(self, location_id: str, allocation_id: str) -> Allocation | None:
        item = self._get(allocation_key(location_id, allocation_id))
        return _allocation(item) if item else None

    def put_allocation(self, allocation: Allocation) -> bool:
        stored = allocation.model_dump(mode="json", exclude_none=True)
        key = allocation_key(allocation.location_id, allocation.allocation_id)
        if allocation.status is AllocationStatus.PENDING and allocation.abandon_at is not None:
            # Listed by when it would be abandoned, until it settles (which removes these).
            shard = zlib.crc32(f"{allocation.location_id}/{allocation.allocation_id}".encode()) % PENDING_SHARDS
            stored |= {"gsi1pk": f"ABANDON#{shard}", "gsi1sk": f"{iso(allocation.abandon_at)}#{allocation.location_id}"}
        return self._put_new({**key, **stored})

    def abandoned_allocations(self, now: datetime, limit: int) -> list[Allocation]:
        found: list[Allocation] = []
        for shard in range(PENDING_SHARDS):
            request: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "gsi1",
                "KeyConditionExpression": "#p = :p AND #s < :now",
                "ExpressionAttributeNames": {"#p": "gsi1pk", "#s": "gsi1sk"},
                "ExpressionAttributeValues": _to_ddb({":p": f"ABANDON#{shard}", ":now": iso(now)}),
                "Limit": limit,
            }
            with _translated():
                response = self.client.query(**request)
            found += [_allocation(_from_ddb(item)) for item in response.get("Items", [])]
        abandoned = [a for a in found if a.status is AllocationStatus.PENDING]  # settled since: not yet unlisted
        return sorted(abandoned, key=lambda a: (a.abandon_at, a.allocation_id))[:limit]

    def settle_allocation(
        self,
        allocation: Allocation,
        *,
        status: AllocationStatus,
        expected: AllocationStatus,
        event: OutboxEvent | None = None,
    ) -> bool:
        key = allocation_key(allocation.location_id, allocation.allocation_id)
        update = _Update().set("status", status.value).set("updated_at", iso(allocation.updated_at))
        update.remove("gsi1pk").remove("gsi1sk")  # no longer pending
        if allocation.refused:
            update.set("refused", [dict(r) for r in allocation.refused])
        if event:
            update.record_event(key["pk"], event)
        condition = f"{update.name('status')} = {update.value(expected.value)}"
        return self._update(update, key, condition, returns="NONE") is not None

    def forget_allocation(self, allocation: Allocation, *, expected: AllocationStatus) -> bool:
        try:
            with _translated():
                self.client.delete_item(
                    TableName=self._table,
                    Key=_to_ddb(allocation_key(allocation.location_id, allocation.allocation_id)),
                    ConditionExpression="#status = :expected",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_to_ddb({":expected": expected.value}),
                )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    # ------------------------------------------------------------ cycle counts
    def open_cycle_count(self, count: CycleCount) -> CycleCount:
        if count.reason is CountReason.MISPICK:
            # Flag the location first: a crash in between leaves the switch and imports blocked
            # (safe, and a retry completes it), never an open mispick count that nothing sees.
            flag = _Update().add_to_set("open_mispick_count_ids", {count.count_id})
            if self._update(flag, location_key(count.location_id), f"attribute_exists({flag.name('pk')})") is None:
                raise NotFound(f"location {count.location_id!r} does not exist")
        item = {
            **count_key(count.location_id, count.count_id),
            "entity": "cycle_count",
            **count.model_dump(mode="json"),
        }
        if self._put_new(item):
            return count
        existing = self.get_cycle_count(count.location_id, count.count_id)
        if existing is None or existing.content_hash != count.content_hash:
            raise CountIdReused(f"cycle count {count.count_id!r} exists with other content")
        return existing

    def close_cycle_count(
        self, location_id: str, count_id: str, *, status: CountStatus, closed_at: datetime
    ) -> CycleCount:
        key = count_key(location_id, count_id)
        update = _Update().set("status", status.value).set("closed_at", iso(closed_at))
        item = self._update(update, key, f"{update.name('status')} = {update.value(CountStatus.OPEN.value)}")
        if item is None:
            item = self._get(key)
            if item is None:
                raise NotFound(f"cycle count {count_id!r} does not exist")
            if item["status"] != status.value:
                raise Conflict(f"cycle count {count_id!r} is already {item['status']}")
        count = _cycle_count(item)
        if count.reason is CountReason.MISPICK:
            unflag = _Update().delete_from_set("open_mispick_count_ids", {count_id})
            self._update(unflag, location_key(location_id))
        return count

    def get_cycle_count(self, location_id: str, count_id: str) -> CycleCount | None:
        item = self._get(count_key(location_id, count_id))
        return _cycle_count(item) if item else None

    # ------------------------------------------------------------ outbox
    def pending_keys(
        self, shard: int, limit: int, after: tuple[str, str] | None = None
    ) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "outbox",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "outbox_pk"},
            "ExpressionAttributeValues": {":p": {"S": f"OUTBOX#{shard}"}},
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = _to_ddb({"outbox_pk": f"OUTBOX#{shard}", "pk": after[0], "sk": after[1]})
        with _translated():
            response = self.client.query(**request)
        keys = [(item["pk"]["S"], item["sk"]["S"]) for item in response.get("Items", [])]
        return keys, keys[-1] if keys and "LastEvaluatedKey" in response else None

    def read_pending(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[list[OutboxEvent], int]]:
        found = {
            (item["pk"]["S"], item["sk"]["S"]): _from_ddb(item)
            for item in self._get_many([{"pk": pk, "sk": sk} for pk, sk in dict.fromkeys(keys)])
        }
        pending = {}
        for key in keys:
            item = found.get(key, {})
            events = [
                _decode_event(name.removeprefix(EVENT_PREFIX), stored)
                for name, stored in item.items()
                if name.startswith(EVENT_PREFIX)
            ]
            pending[key] = (events, int(item.get("version", 0)))
        return pending

    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], version: int | None) -> None:
        item_key = {"pk": key[0], "sk": key[1]}

        def removal(leave_index: bool) -> _Update:
            update = _Update()
            for event_id in event_ids:
                update.remove(EVENT_PREFIX + event_id)
            if leave_index:
                update.remove("outbox_pk")
            return update

        if version is not None:
            # Everything read was published: leave the index, unless the item changed meanwhile.
            update = removal(leave_index=True)
            name = update.name("version")
            condition = (
                f"attribute_exists({update.name('pk')})"
                f" AND (attribute_not_exists({name}) OR {name} = {update.value(version)})"
            )
            if self._update(update, item_key, condition, returns="NONE") is not None:
                return
        if event_ids:
            update = removal(leave_index=False)
            self._update(update, item_key, f"attribute_exists({update.name('pk')})", returns="NONE")


def _encode_cursor(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, fields: set[str]) -> dict[str, str]:
    invalid = InvalidInput(
        "the cursor is not one this list returned",
        details=[{"field": "query.cursor", "code": "invalid_cursor", "message": "use next_cursor as returned"}],
    )
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise invalid from error
    if not isinstance(key, dict) or set(key) != fields or not all(isinstance(v, str) for v in key.values()):
        raise invalid
    return key
