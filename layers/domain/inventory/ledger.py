"""The ledger as a product's hot item keeps it (docs/data-design.md, "Bounded history"): which
import layers' sums a line adds itself to, the sums an item of the earlier shape folds into, and
which entries a base does not include. Pure functions of the location and the entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from inventory.models import LayerRule, Location, MergedRows
from inventory.models.counters import LedgerEntry
from inventory.models.imports import StockRow, included_by
from inventory.types import MAIN

EVERY_LINE = 0  # the layer whose sum takes every line: the base of a product no import knows


def layers_for(location: Location, logical_timestamp: int | None) -> tuple[int, ...]:
    """The sums a shipment or handover line adds its quantity to, as its batch read `location`:
    every line's, and each announced import's that does not include it (the import names no
    `shipments_included_through`, so the line, read after the import's claim, was applied after it
    was accepted; or it names one below the line's logical timestamp)."""
    merging = location.merging()
    excluded = (
        seq
        for seq, through in location.announced().items()
        if seq not in merging and (through is None or (logical_timestamp is not None and logical_timestamp > through))
    )
    blind = (seq for seq in merging if not _late(merging[seq], logical_timestamp))
    return (EVERY_LINE, *sorted((*excluded, *blind)))


def late_layers(location: Location, logical_timestamp: int | None) -> tuple[int, ...]:
    """The merging layers for which a line is late: at or below a watermark one of their rows may
    follow. Whether such a line adds itself to the layer's sum depends on the product's row there
    (`StockRow.includes`): it reads the product first, never writes blind."""
    return tuple(sorted(seq for seq, rule in location.merging().items() if _late(rule, logical_timestamp)))


def late_layers_excluding(
    location: Location, logical_timestamp: int | None, rows: Mapping[int, Sequence[StockRow]]
) -> tuple[int, ...]:
    """Of the layers a line is late for, those whose row of the product (its main row, as read)
    does not include it: the line adds itself to their sums."""
    own = location.announced()
    excluded = []
    for seq in late_layers(location, logical_timestamp):
        row = next((r for r in rows.get(seq, ()) if r.stock_location == MAIN), None)
        included = row.includes(logical_timestamp, own[seq]) if row else included_by(own[seq], logical_timestamp)
        if not included:  # (no row yet: the layer's own rule; a merged row copied later is settled over)
            excluded.append(seq)
    return tuple(excluded)


def _late(rule: tuple[int | None, MergedRows], logical_timestamp: int | None) -> bool:
    own, merged = rule
    named = [t for t in (own, merged.rows_through) if t is not None]
    return bool(named) and (logical_timestamp is None or logical_timestamp <= max(named))


def folded_sums(location: Location, ledger: Iterable[LedgerEntry]) -> dict[int, int]:
    """The sums that the entries of an item of the earlier shape make, for each layer the location
    announces (and every line's): what its next write sets when it folds the item."""
    moving = [e for e in ledger if e.kind.moves_stock_under_erp and e.stock_location == MAIN]
    sums = {EVERY_LINE: sum(e.quantity for e in moving)}
    visible = {v.seq: v for v in location.visible_imports}
    for seq, through in location.announced().items():
        layer = visible.get(seq)
        if layer is not None:
            sums[seq] = sum(e.quantity for e in moving if e.after(layer))
        else:  # the running import: it includes what was applied before its claim (these entries were)
            sums[seq] = sum(
                e.quantity
                for e in moving
                if (through is not None and e.logical_timestamp is not None and e.logical_timestamp > through)
                or (through is None and e.epoch is not None and e.epoch >= seq)
            )
    return {seq: total for seq, total in sums.items() if total or seq == EVERY_LINE}


def counts_after(entry: LedgerEntry, base: LayerRule | None) -> bool:
    """Whether an entry was applied after `base` (no base: every entry was): a shipment or handover
    by the base's rule, an inventory transaction (no logical timestamp) by the order the service
    applied it in. One recorded under an ERP master is listed after its base as pending the next
    import, and moves nothing."""
    return base is None or entry.after(base)


def epoch_of_legacy(location: Location, entry: LedgerEntry) -> int:
    """The epoch an entry of the earlier shape (which records none) is given when it leaves the
    hot item: the newest visible import accepted before it was applied (0: before all of them).
    Every import announced since was accepted after every such entry."""
    before = [v.seq for v in location.visible_imports if v.accepted_at < entry.applied_at]
    return max(before, default=0)
