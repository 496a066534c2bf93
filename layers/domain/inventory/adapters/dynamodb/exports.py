"""Availability exports: the export record and its location exports (`keys.export_key`,
`keys.location_export_key`), each location's export state (`keys.export_state_key`: its lease and
its last file), and the products' change marks in the sparse `changes` index
(docs/data-design.md, "Availability exports")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    CHANGE_MARK,
    EXPORTS_PARTITION,
    LOCATION_PREFIX,
    changes_partition,
    counters_key,
    export_index_keys,
    export_key,
    export_pk,
    export_state_key,
    exported_location_of,
    product_of,
)
from inventory.adapters.dynamodb.outbox import record_event
from inventory.adapters.dynamodb.table import TableItems
from inventory.cursor import decode_cursor, encode_cursor, invalid_cursor
from inventory.models import OutboxEvent, Page, iso
from inventory.models.exports import AvailabilityExport, ExportState, ExportStatus, LocationExport, LocationFile

CHANGES_INDEX = "changes"
EXPORT_RETENTION = timedelta(days=14)  # as the bucket keeps the files


def _expires(at: datetime) -> int:
    return int((at + EXPORT_RETENTION).timestamp())


def export_of(item: Mapping[str, Any]) -> AvailabilityExport:
    return AvailabilityExport.model_validate({k: item[k] for k in AvailabilityExport.model_fields if k in item})


def location_export_of(item: Mapping[str, Any]) -> LocationExport:
    return LocationExport.model_validate({k: item[k] for k in LocationExport.model_fields if k in item})


class AvailabilityExports(TableItems):
    """Implements ExportRepository."""

    # ------------------------------------------------------------ the export
    def put_export(self, export: AvailabilityExport) -> bool:
        stored = export.model_dump(mode="json", exclude_none=True)
        keys = export_index_keys(export.export_id, export.requested_at)
        return self._table.put_new(
            {**export_key(export.export_id), **keys, **stored, "expires_at": _expires(export.requested_at)}
        )

    def get_export(self, export_id: str) -> tuple[AvailabilityExport, dict[str, LocationExport]] | None:
        """The export and its location exports, read consistently; None when there is none."""
        items = list(
            self._table.query_all(
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": "pk"},
                ExpressionAttributeValues=to_ddb({":pk": export_pk(export_id)}),
                ConsistentRead=True,
            )
        )
        decoded = [from_ddb(item) for item in items]
        record = next((item for item in decoded if not item["sk"].startswith(LOCATION_PREFIX)), None)
        if record is None:
            return None
        units = {
            exported_location_of(item["sk"]): location_export_of(item)
            for item in decoded
            if item["sk"].startswith(LOCATION_PREFIX)
        }
        return export_of(record), units

    def list_exports(self, limit: int, cursor: str | None) -> Page[AvailabilityExport]:
        request: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "gsi1pk"},
            "ExpressionAttributeValues": to_ddb({":p": EXPORTS_PARTITION}),
            "ScanIndexForward": False,  # newest first
            "Limit": limit,
        }
        if cursor:
            position = decode_cursor(cursor)
            if not (isinstance(position, list) and len(position) == 2 and all(isinstance(p, str) for p in position)):
                raise invalid_cursor()
            gsi1sk, export_id = position
            request["ExclusiveStartKey"] = to_ddb(
                {**export_key(export_id), "gsi1pk": EXPORTS_PARTITION, "gsi1sk": gsi1sk}
            )
        items, last = self._table.query(**request)
        after = from_ddb(last) if last else None
        next_cursor = encode_cursor([after["gsi1sk"], after["pk"].removeprefix("EXPORT#")]) if after else None
        return Page(items=[export_of(from_ddb(item)) for item in items], next_cursor=next_cursor)

    def mark_export_running(self, export_id: str) -> None:
        update = Update().set("status", ExportStatus.RUNNING.value)
        self._table.update(update, export_key(export_id), update.equals("status", ExportStatus.ACCEPTED.value))

    def finish_export(self, export: AvailabilityExport, event: OutboxEvent) -> bool:
        """The export completed (or failed) with its event, once: False when it was finished already."""
        key = export_key(export.export_id)
        assert export.completed_at is not None
        update = Update().set("status", export.status.value).set("completed_at", iso(export.completed_at))
        if export.manifest_uri is not None:
            update.set("manifest_uri", export.manifest_uri)
        record_event(update, key["pk"], event)
        condition = f"{update.name('status')} IN ({update.value('accepted')}, {update.value('running')})"
        return self._table.update(update, key, condition, returns="NONE") is not None

    # ------------------------------------------------------------ a location's part
    def put_location_export(self, export_id: str, unit: LocationExport, at: datetime) -> bool:
        """Record a location's part, unless it is completed already (False then)."""
        key = {"pk": export_pk(export_id), "sk": f"{LOCATION_PREFIX}{unit.location_id}"}
        item = {**key, **unit.model_dump(mode="json", exclude_none=True), "expires_at": _expires(at)}
        return self._table.put_if(
            item,
            "attribute_not_exists(#pk) OR #status <> :completed",
            names={"#pk": "pk", "#status": "status"},
            values={":completed": ExportStatus.COMPLETED.value},
        )

    # ------------------------------------------------------------ the location's state
    def claim_export_state(
        self, location_id: str, export_id: str, now: datetime, lease_until: datetime
    ) -> ExportState | None:
        """Take the location's lease for `export_id` (free, its own, or expired); its state after, or
        None when another export holds it."""
        update = Update().set("holder", export_id).set("lease_until", iso(lease_until))
        holder, lease = update.name("holder"), update.name("lease_until")
        mine, expired = f"{holder} = {update.value(export_id)}", f"{lease} < {update.value(iso(now))}"
        condition = f"attribute_not_exists({holder}) OR {mine} OR {expired}"
        item = self._table.update(update, export_state_key(location_id), condition)
        return None if item is None else _state_of(location_id, item)

    def commit_export_state(self, file: LocationFile) -> bool:
        """The location's last file is `file`, and its lease is given back: only while this export
        holds the lease (False: it does not)."""
        update = Update().set("last", file.model_dump(mode="json", exclude_none=True)).remove("holder", "lease_until")
        condition = update.equals("holder", file.export_id)
        return self._table.update(update, export_state_key(file.location_id), condition, returns="NONE") is not None

    def release_export_state(self, location_id: str, export_id: str) -> None:
        update = Update().remove("holder", "lease_until")
        self._table.update(update, export_state_key(location_id), update.equals("holder", export_id), returns="NONE")

    # ------------------------------------------------------------ change marks
    def changed_products(self, location_id: str, shard: int) -> Iterator[str]:
        """The products of one shard marked as changed since the location's last export (the index
        is read eventually consistently: a mark set a moment ago may show in the next export)."""
        items = self._table.query_all(
            IndexName=CHANGES_INDEX,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": CHANGE_MARK},
            ExpressionAttributeValues=to_ddb({":p": changes_partition(location_id, shard)}),
        )
        return (product_of(item["sk"]["S"]) for item in items)

    def clear_change(self, location_id: str, product_id: str, version: int) -> bool:
        """Remove the product's mark, if its hot item's `version` is still `version`."""
        update = Update().remove(CHANGE_MARK)
        condition = update.equals("version", version)
        return self._table.update(update, counters_key(location_id, product_id), condition, returns="NONE") is not None


def _state_of(location_id: str, item: Mapping[str, Any]) -> ExportState:
    last = item.get("last")
    return ExportState(
        location_id=location_id,
        holder=item.get("holder"),
        lease_until=item.get("lease_until"),
        last=LocationFile.model_validate(last) if last else None,
    )
