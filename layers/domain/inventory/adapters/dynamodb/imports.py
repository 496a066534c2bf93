"""Imports: the import record (`keys.import_key`), the claim and release of its location, and its
rows (`keys.import_row_key`), in partitions of their own import.

Rows are immutable items of their own import, written by BatchWriteItem: an import never updates a
product's counters, and its rows stay invisible until the one write on the location item that
completes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.codec import to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    PRODUCT_SHARDS,
    import_key,
    import_partition,
    import_row_key,
    import_row_of,
    import_row_order_of,
    location_key,
    location_pk,
    past_product,
)
from inventory.adapters.dynamodb.locations import created_if_absent, read_location
from inventory.adapters.dynamodb.outbox import record_event
from inventory.adapters.dynamodb.table import BATCH_WRITE_ITEMS, SCAN_PAGE_ITEMS, TableItems
from inventory.errors import Conflict, ImportIdReused, ImportInProgress, NotFound
from inventory.models import (
    ImportStatus,
    LocationType,
    OutboxEvent,
    VisibleImport,
    epoch_ms,
    from_epoch_ms,
    iso,
    product_of_order,
    product_order,
)
from inventory.models.imports import ImportCounts, ImportRecord, RowOrigin, StockRow

WRITE_THREADS = 8  # BatchWriteItem calls of one chunk of rows in flight at once
_UNFINISHED = (ImportStatus.ACCEPTED.value, ImportStatus.RUNNING.value)


def import_record_of(item: Mapping[str, Any]) -> ImportRecord:
    fields = {name: item[name] for name in ImportRecord.model_fields if name in item}
    return ImportRecord.model_validate(fields)


def stock_row_of(item: Mapping[str, Any]) -> StockRow:
    """An import row, as DynamoDB returns it (a merged row with its origin: `o`, `i`, `a`, `w`, `s`)."""
    product_id, stock_location = import_row_of(item["sk"]["S"])
    origin = None
    if "o" in item:
        origin = RowOrigin(
            seq=int(item["o"]["N"]),
            import_id=item["i"]["S"],
            accepted_at=from_epoch_ms(int(item["a"]["N"])),
            shipments_included_through=int(item["w"]["N"]) if "w" in item else None,
            layer=int(item["s"]["N"]),
        )
    return StockRow(product_id=product_id, stock_location=stock_location, quantity=int(item["q"]["N"]), origin=origin)


def _merged_row_item(location_id: str, seq: int, row: StockRow, origin: RowOrigin) -> dict[str, Any]:
    key = import_row_key(location_id, seq, row.product_id, row.stock_location)
    item = {
        "pk": {"S": key["pk"]},
        "sk": {"S": key["sk"]},
        "q": {"N": str(row.quantity)},
        "o": {"N": str(origin.seq)},
        "i": {"S": origin.import_id},
        "a": {"N": str(epoch_ms(origin.accepted_at))},
        "s": {"N": str(origin.layer)},
    }
    if origin.shipments_included_through is not None:
        item["w"] = {"N": str(origin.shipments_included_through)}
    return item


class Imports(TableItems):
    """Implements ImportRepository."""

    product_shards = PRODUCT_SHARDS

    def begin_import(
        self, record: ImportRecord, create_as: LocationType | None = None, *, claimed_after: int | None = None
    ) -> ImportRecord:
        key = location_key(record.location_id)
        if self._table.get(import_key(record.location_id, record.import_id)) is not None:
            raise ImportIdReused(f"import {record.import_id!r} exists already")
        claim = Update()
        claim.set("running_import_id", record.import_id)
        # The claim's own time, so that the sweep of imports never started can tell its age even
        # when no record follows it (other writes of the location move `updated_at`).
        claim.set("running_import_claimed_at", iso(record.accepted_at))
        claim.set("last_import", record.summary().model_dump(mode="json", exclude_none=True))
        claim.set("updated_at", iso(record.accepted_at))
        # The import's sequence number, announced with what it includes: from this write on, every
        # shipment line whose batch reads the location adds itself to the import's sum by its rule.
        next_seq = f"if_not_exists({claim.name('import_seq')}, {claim.value(0)}) + {claim.value(1)}"
        claim.set_expression("import_seq", next_seq).set_expression("running_import_seq", next_seq)
        if record.shipments_included_through is not None:
            claim.set("running_import_through", record.shipments_included_through)
        else:
            claim.remove("running_import_through")
        if record.merged is not None:  # it merges: lines follow its merged rows' rules from now on
            claim.set("running_import_merged", record.merged.model_dump())
        else:
            claim.remove("running_import_merged")
        # Free, or claimed by this very import id with no record yet: an earlier attempt of the
        # same request stopped between its claim and its record, and this one takes it over.
        free = f"({claim.absent('running_import_id')} OR {claim.equals('running_import_id', record.import_id)})"
        if create_as is None:
            condition = f"{claim.exists('pk')} AND {free}"
        else:  # the claim creates the location, so that a refused claim leaves none behind
            created_if_absent(claim, record.location_id, create_as, record.accepted_at)
            condition = f"{claim.absent('pk')} OR {free}"
        if claimed_after is not None:  # the layers it merges are still those visible: no claim since
            unclaimed = claim.absent("import_seq") if claimed_after == 0 else claim.equals("import_seq", claimed_after)
            condition = f"({condition}) AND {unclaimed}"
        before = self._table.update(claim, key, condition, returns="ALL_OLD")
        if before is None:
            location = read_location(self._table, record.location_id)
            if location is None:
                raise NotFound(f"location {record.location_id!r} does not exist")
            if location.running_import_id in (None, record.import_id):
                raise ImportInProgress(f"another import claimed location {record.location_id!r} since it was read")
            raise ImportInProgress(f"import {location.running_import_id!r} is still running for this location")
        record = record.model_copy(update={"seq": int(before.get("import_seq", 0)) + 1})
        key_of_record = import_key(record.location_id, record.import_id)
        if not self._table.put_new({**key_of_record, "entity": "import", **record.model_dump(mode="json")}):
            # Another request with the same import id (or the sweep of imports never started)
            # recorded it in between. A claim this request took over from the same id stays with
            # that import: while it runs it is its own, and its ending (or the sweep's, which failed
            # it) releases it on the condition that it is still this id's, with what the import made
            # of the location. Only a claim this request took of a free location is given back, as
            # the location was (the import that recorded the id ended and released it before).
            existing = self._table.get(key_of_record)
            took_over = before.get("running_import_id") == record.import_id
            if (existing is not None and existing["status"] in _UNFINISHED) or took_over:
                raise ImportIdReused(f"import {record.import_id!r} exists already")
            release = Update().remove(
                "running_import_id",
                "running_import_claimed_at",
                "running_import_seq",
                "running_import_through",
                "running_import_merged",
            )
            if before.get("last_import"):
                release.set("last_import", before["last_import"])
            else:
                release.remove("last_import")
            self._table.update(release, key, release.equals("running_import_id", record.import_id))
            raise ImportIdReused(f"import {record.import_id!r} exists already")
        return record

    def mark_queued(self, location_id: str, import_id: str) -> None:
        update = Update().set("queued", True)
        self._table.update(update, import_key(location_id, import_id), update.exists("pk"), returns="NONE")

    def record_progress(self, location_id: str, import_id: str, *, written_through_line: int) -> None:
        update = Update().set("status", ImportStatus.RUNNING.value).set("written_through_line", written_through_line)
        if self._table.update(update, import_key(location_id, import_id), update.is_in("status", _UNFINISHED)) is None:
            raise Conflict(f"import {import_id!r} is no longer running")

    def record_settling(
        self, location_id: str, import_id: str, *, counts: ImportCounts, settled_through: tuple[int, str | None]
    ) -> None:
        update = Update().set("status", ImportStatus.RUNNING.value).set("rows_written", True)
        update.set("counts", counts.model_dump()).set("settled_through", list(settled_through))
        if self._table.update(update, import_key(location_id, import_id), update.is_in("status", _UNFINISHED)) is None:
            raise Conflict(f"import {import_id!r} is no longer running")

    def record_merging(self, location_id: str, import_id: str, *, merged_shards: int) -> None:
        update = Update().set("merged_shards", merged_shards)
        if self._table.update(update, import_key(location_id, import_id), update.is_in("status", _UNFINISHED)) is None:
            raise Conflict(f"import {import_id!r} is no longer running")

    def write_import_rows(self, location_id: str, seq: int, rows: Sequence[StockRow]) -> None:
        items = []
        for row in rows:  # the hot loop of a 1,000,000-row import: attribute values built directly
            if row.origin is not None:  # a merged row
                items.append({"PutRequest": {"Item": _merged_row_item(location_id, seq, row, row.origin)}})
                continue
            key = import_row_key(location_id, seq, row.product_id, row.stock_location)
            item = {"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}, "q": {"N": str(row.quantity)}}
            items.append({"PutRequest": {"Item": item}})
        batches = [items[start : start + BATCH_WRITE_ITEMS] for start in range(0, len(items), BATCH_WRITE_ITEMS)]
        if len(batches) <= 1:
            for batch in batches:
                self._write_rows(batch)
            return
        with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, len(batches))) as pool:
            list(pool.map(self._write_rows, batches))

    def _write_rows(self, requests: list[dict[str, Any]]) -> None:
        gave_up = "DynamoDB kept part of a batch unprocessed; the import resumes from its checkpoint"
        self._table.write_batch(requests, gave_up)

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
        release = _release(record)
        # The record's time: a retry after a crash between the two writes finds the record completed
        # earlier, and the location must say what the record (and its `last_import`) says.
        completed_at = record.completed_at or completed_at
        visible = VisibleImport(
            seq=record.seq or 0,
            import_id=record.import_id,
            kind=record.kind,
            shipments_included_through=record.shipments_included_through,
            accepted_at=record.accepted_at,
            completed_at=completed_at,
            merged=record.merged,
        ).model_dump(mode="json")
        if record.kind.is_baseline:
            # A whole-location import supersedes every earlier one: readers need only it, and later ones.
            release.set("visible_imports", {str(record.seq): visible})
            release.set("last_baseline_import_at", iso(completed_at))
            release.set("last_baseline_import_ms", epoch_ms(completed_at))
        else:
            release.set_path(("visible_imports", str(record.seq)), visible)
            for merged in record.merges:  # in the same write: its layer replaces them
                release.remove_path(("visible_imports", str(merged)))
        if event is not None:
            record_event(release, location_pk(location_id), event)
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
        unstarted_only: bool = False,
    ) -> ImportRecord:
        fields: dict[str, Any] = {"errors": errors}
        if counts is not None:
            fields["counts"] = counts.model_dump()
        record = self._finish_import(
            location_id, import_id, ImportStatus.FAILED, failed_at, unstarted_only=unstarted_only, **fields
        )
        self._apply_release(record, _release(record))
        return record

    def fail_unrecorded_import(self, record: ImportRecord) -> tuple[ImportRecord, bool]:
        key = import_key(record.location_id, record.import_id)
        if not self._table.put_new({**key, "entity": "import", **record.model_dump(mode="json")}):
            existing = self._table.get(key)  # records are never deleted: it is there
            if existing is None:
                raise Conflict(f"import {record.import_id!r} was recorded and is gone")
            return import_record_of(existing), False
        self._apply_release(record, _release(record))
        return record, True

    def _finish_import(
        self,
        location_id: str,
        import_id: str,
        status: ImportStatus,
        at: datetime,
        *,
        unstarted_only: bool = False,
        **fields: Any,
    ) -> ImportRecord:
        key = import_key(location_id, import_id)
        update = Update().set("status", status.value).set("completed_at", iso(at))
        for name, value in fields.items():
            update.set(name, value)
        if unstarted_only:  # accepted, and its first step never sent: nobody runs it
            unqueued = f"({update.absent('queued')} OR {update.equals('queued', False)})"
            guard = f"{update.equals('status', ImportStatus.ACCEPTED.value)} AND {unqueued}"
        else:
            guard = update.is_in("status", _UNFINISHED)
        item = self._table.update(update, key, f"{update.exists('pk')} AND {guard}")
        if item is None:
            existing = self._table.get(key)
            if existing is None:
                raise NotFound(f"import {import_id!r} does not exist")
            if existing["status"] != status.value:
                state = "queued" if existing["status"] == ImportStatus.ACCEPTED.value else existing["status"]
                raise Conflict(f"import {import_id!r} is {state}: it cannot end as {status.value}")
            item = existing  # a retry after a crash: finish the release below
        return import_record_of(item)

    def _apply_release(self, record: ImportRecord, update: Update) -> None:
        condition = update.equals("running_import_id", record.import_id)
        self._table.update(update, location_key(record.location_id), condition)

    def get_import(self, location_id: str, import_id: str) -> ImportRecord | None:
        item = self._table.get(import_key(location_id, import_id))
        return import_record_of(item) if item else None

    def import_rows_of_shard(self, location_id: str, seq: int, shard: int) -> Iterator[StockRow]:
        items = self._table.query_all(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues=to_ddb({":pk": import_partition(location_id, seq, shard)}),
            ConsistentRead=True,
        )
        return (stock_row_of(item) for item in items)

    def scan_import_rows(self, location_id: str, seq: int, shard: int) -> Iterator[tuple[str, StockRow]]:
        """A layer's rows of one shard in key order, each with its product's key form
        (`product_order`): what the export reads of every product. Built without validation
        (`model_construct`): they come as this module wrote them, and a scan of a location of a
        million rows would spend most of its time validating them again."""
        items = self._table.query_all(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues=to_ddb({":pk": import_partition(location_id, seq, shard)}),
            ConsistentRead=True,
            Limit=SCAN_PAGE_ITEMS,
        )
        for item in items:
            if "o" in item:  # a merged row (rare): with its origin, validated
                row = stock_row_of(item)
                yield product_order(row.product_id), row
                continue
            order, stock_location = import_row_order_of(item["sk"]["S"])
            quantity = int(item["q"]["N"])
            product_id = product_of_order(order)
            yield (
                order,
                StockRow.model_construct(product_id=product_id, stock_location=stock_location, quantity=quantity),
            )

    def purge_import_rows(self, location_id: str, seq: int, shard: int) -> int:
        keys = self._table.query_all(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
            ExpressionAttributeValues=to_ddb({":pk": import_partition(location_id, seq, shard)}),
            ProjectionExpression="#pk, #sk",
        )
        deleted = 0
        batch: list[dict[str, Any]] = []
        gave_up = "DynamoDB kept part of a purge unprocessed; the purge goes on from its shard"
        for key in keys:
            batch.append({"DeleteRequest": {"Key": {"pk": key["pk"], "sk": key["sk"]}}})
            if len(batch) == BATCH_WRITE_ITEMS:
                self._table.write_batch(batch, gave_up)
                deleted, batch = deleted + len(batch), []
        if batch:
            self._table.write_batch(batch, gave_up)
        return deleted + len(batch)

    def import_rows_page(
        self, location_id: str, seq: int, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[StockRow], bool]:
        after = past_product(after_product) if after_product is not None else None
        items, more = self._table.partition_after(import_partition(location_id, seq, shard), after, limit)
        return [stock_row_of(item) for item in items], more


def _release(record: ImportRecord) -> Update:
    """Give the location back: no import running, this one the last (and announced no longer as
    running: once visible, its visible entry announces it)."""
    update = Update().remove("running_import_id", "running_import_claimed_at")
    update.remove("running_import_seq", "running_import_through", "running_import_merged")
    update.set("last_import", record.summary().model_dump(mode="json", exclude_none=True))
    return update.set("updated_at", iso(record.completed_at or record.accepted_at))
