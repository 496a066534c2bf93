"""Stock imports as the location's history keeps them, and their rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from inventory.models import Frozen, ImportKind, ImportStatus, ImportSummary, MergedRows


class ImportCounts(Frozen):
    rows: int = Field(default=0, ge=0)
    applied: int = Field(default=0, ge=0)
    zeroed: int = Field(default=0, ge=0)


class ImportRecord(Frozen):
    """A stock import as the location's history keeps it (its rows live in partitions of their own)."""

    location_id: str
    import_id: str
    kind: ImportKind
    status: ImportStatus
    # Of the request that started it. None for an import failed by the sweep before its request
    # recorded it (stopped between its claim and its record): its content was never known.
    content_hash: str | None = None
    shipments_included_through: int | None = None
    source: str | None = None
    force: bool = False
    requested_by: str | None = None
    seq: int | None = None  # the location's import sequence, given when the import claims it
    accepted_at: datetime
    completed_at: datetime | None = None
    # Checkpoint: every valid row up to this line of the file is written (0: none yet).
    written_through_line: int = 0
    queued: bool = False  # its first step is on the worker's queue (a repeat of the request re-sends it until then)
    counts: ImportCounts = ImportCounts()
    # (pydantic copies a mutable default for each instance; ruff cannot see that Frozen is pydantic's)
    errors: list[dict[str, Any]] = []  # noqa: RUF012
    warnings: list[dict[str, Any]] = []  # noqa: RUF012
    # Every row is written and counted (`counts`): what is left is to settle the products' sums of
    # this import (an import naming `shipments_included_through`), then to complete it.
    rows_written: bool = False
    # How far the settling went: (shard, last product settled in it), products in key order.
    settled_through: tuple[int, str | None] | None = None
    # The partial layers it takes into its own (a merging import), decided with its claim, and what
    # they hold; how many shards of their rows it has copied so far.
    merges: tuple[int, ...] = ()
    merged: MergedRows | None = None
    merged_shards: int = 0

    @property
    def settles(self) -> bool:
        """Whether its products' sums are settled before it completes (docs/data-design.md)."""
        return self.shipments_included_through is not None or bool(self.merges)

    def summary(self) -> ImportSummary:
        return ImportSummary(
            import_id=self.import_id, kind=self.kind, status=self.status, completed_at=self.completed_at
        )


class RowOrigin(Frozen):
    """Where a merged row came from: the import that gave its figure (and so the rule of what the
    figure includes), and the layer it was copied from."""

    seq: int
    import_id: str
    accepted_at: datetime
    shipments_included_through: int | None = None
    layer: int


class StockRow(Frozen):
    """One row of an import: the base of a product in one stock location."""

    product_id: str
    stock_location: str
    quantity: int
    origin: RowOrigin | None = None  # a row an import merged in from an earlier partial layer

    def includes(self, logical_timestamp: int | None, own_through: int | None) -> bool:
        """Whether the base this row gives includes a shipment line whose batch read the location
        after the row's layer was claimed (and so after its origin's): by the origin's watermark,
        or, for an own row, by its layer's (no watermark: such a line was applied after it)."""
        through = self.origin.shipments_included_through if self.origin is not None else own_through
        return included_by(through, logical_timestamp)


def included_by(through: int | None, logical_timestamp: int | None) -> bool:
    """Whether a base naming `shipments_included_through` includes a line read after its claim."""
    return through is not None and (logical_timestamp is None or logical_timestamp <= through)
