"""A product's ledger pages (`keys.ledger_page_key`): the entries moved out of its hot item's
buffer, up to PAGE_ENTRIES a page, in the order they were moved, and the unpublished `Shipment
Applied` parts that moved with them (the page is then in the `outbox` index until the relay
publishes them).

Moving takes two writes, and no transaction. First the page is put under the next page number
(`pages` + 1), on the condition that no page is there or that the one there was made from an
older state of the hot item (a page whose number is above `pages` is not committed: nothing reads
it). Then the hot item's own write commits it: it removes the moved entries (and their events)
from the buffer and sets `pages`, on the condition that `version` is still the one the page was
made from. A stop between the two leaves a page nobody reads, which the next move puts again. Two
movers of the same state: the second finds the first one's page, made from the very state it read,
and commits that page's entries (only one of the two commits can apply: `version`).

The entry codec, shared with the hot item's buffer, keeps entries small: one-letter names, times
in epoch milliseconds, the stock location only when it is not `main`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    buffer_attribute,
    counters_key,
    entry_attribute,
    epoch_attribute,
    event_attribute,
    ledger_page_key,
    moved_attribute,
    outbox_pk_of,
    segment_attribute,
    sum_attribute,
)
from inventory.adapters.dynamodb.outbox import encode_event
from inventory.adapters.dynamodb.table import TableItems
from inventory.models import SEGMENT, SOURCE_HASH_CHARS, LedgerKind, epoch_ms, from_epoch_ms
from inventory.models.counters import LedgerEntry, LineClose, PageMove
from inventory.types import MAIN

_KIND_CODES = {LedgerKind.SHIPMENT: "s", LedgerKind.HANDOVER: "h", LedgerKind.COUNT: "c"}
_KINDS = {code: kind for kind, code in _KIND_CODES.items()}


def stored_entry(entry: LedgerEntry) -> dict[str, Any]:
    """An entry as the buffer and the pages keep it (its id and source are the buffer's attribute name)."""
    stored: dict[str, Any] = {
        "k": _KIND_CODES.get(entry.kind, entry.kind.value),
        "q": entry.quantity,
        "at": epoch_ms(entry.applied_at),
    }
    if entry.logical_timestamp is not None:
        stored["t"] = entry.logical_timestamp
    if entry.reference is not None:
        stored["r"] = entry.reference
    if entry.epoch is not None:
        stored["n"] = entry.epoch
    if entry.stock_location != MAIN:
        stored["s"] = entry.stock_location
    if entry.closes:
        stored["al"] = [[c.allocation_id, c.received, c.quantity] for c in entry.closes]
    if entry.to_stock_location is not None:
        stored["d"] = entry.to_stock_location
    if entry.pending_import:
        stored["e"] = 1
    if entry.layers:
        stored["ly"] = list(entry.layers)
    if entry.counted is not None:
        stored["c"] = entry.counted
    return stored


def entry_of_stored(entry_id: str, source_hash: str | None, stored: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        entry_id=entry_id,
        kind=_KINDS.get(stored["k"]) or LedgerKind(stored["k"]),
        quantity=int(stored["q"]),
        stock_location=stored.get("s", MAIN),
        logical_timestamp=stored.get("t"),
        applied_at=from_epoch_ms(int(stored["at"])),
        reference=stored.get("r"),
        source_hash=source_hash,
        epoch=stored.get("n"),
        closes=tuple(
            LineClose(allocation_id=str(a), received=int(r), quantity=int(q)) for a, r, q in stored.get("al", [])
        ),
        to_stock_location=stored.get("d"),
        pending_import=bool(stored.get("e")),
        layers=tuple(int(n) for n in stored.get("ly", ())),
        counted=stored.get("c"),
    )


def _page_entry(entry: LedgerEntry) -> dict[str, Any]:
    page_entry = {"id": entry.entry_id, **stored_entry(entry)}
    if entry.source_hash:
        page_entry["h"] = entry.source_hash[:SOURCE_HASH_CHARS]
    return page_entry


def _entries_of_page(item: Mapping[str, Any]) -> list[LedgerEntry]:
    return [entry_of_stored(stored["id"], stored.get("h"), stored) for stored in item.get("entries", [])]


def entry_name(entry: LedgerEntry) -> str:
    """The attribute of an entry in a product's hot item: in the buffer, or as the earlier shape kept it."""
    if entry.legacy:
        return entry_attribute(entry.entry_id, entry.source_hash)
    return buffer_attribute(entry.entry_id, entry.source_hash)


class LedgerPages(TableItems):
    """Implements the ledger pages' part of CountersRepository."""

    def move_to_page(self, location_id: str, move: PageMove) -> bool:
        expected = move.expected
        number = expected.pages + 1
        key = ledger_page_key(location_id, expected.product_id, number)
        entries, event_ids = list(move.entries), [event.event_id for event in move.events]
        page: dict[str, Any] = {
            **key,
            "entries": [_page_entry(e) for e in entries],
            "event_ids": event_ids,
            "from_version": expected.version,
            # The relay's guard, as on every item of the outbox: a page put again over one the relay
            # read (made from a newer state of the product) stays in the index for the next round.
            "version": expected.version,
        }
        if move.events:
            page |= {event_attribute(event.event_id): encode_event(event) for event in move.events}
            page["outbox_pk"] = outbox_pk_of(key["pk"])
        if not self._table.put_unless_newer(page, "from_version", expected.version):
            there = self._table.get(key)
            if there is None or there["from_version"] != expected.version:
                return False  # the hot item moved on since it was read: read it again
            # Another mover of the very state read put its page first: commit that one's entries.
            # They are entries of that state: the hot item's own (their attribute names) replace them.
            held = {(e.entry_id, (e.source_hash or "")[:SOURCE_HASH_CHARS]): e for e in expected.ledger}
            entries = [held.get((e.entry_id, e.source_hash or ""), e) for e in _entries_of_page(there)]
            event_ids = list(there.get("event_ids", []))
        commit = Update()
        for entry in entries:
            commit.remove(entry_name(entry))
        for event_id in event_ids:
            commit.remove(event_attribute(event_id))
        commit.set("pages", number).increment("version").increment("nbuf", -len(entries))
        kept_segments, kept_epochs = set(), set()
        for entry in entries:
            if entry.logical_timestamp is not None and entry.logical_timestamp // SEGMENT >= move.segment_cut:
                kept_segments.add(entry.logical_timestamp // SEGMENT)
            if entry.epoch is not None and entry.epoch >= move.epoch_cut:
                kept_epochs.add(entry.epoch)
        for segment in sorted(kept_segments - expected.segments.keys()):
            commit.set(segment_attribute(segment), number, if_absent=True)
        for epoch in sorted(kept_epochs - expected.epochs.keys()):
            commit.set(epoch_attribute(epoch), number, if_absent=True)
        for seq in move.drop_sums:
            commit.remove(sum_attribute(seq))
        for stock_location, seq in move.drop_moved:
            commit.remove(moved_attribute(stock_location, seq))
        for segment in sorted(set(move.drop_segments) - kept_segments):
            commit.remove(segment_attribute(segment))
        for epoch in sorted(set(move.drop_epochs) - kept_epochs):
            commit.remove(epoch_attribute(epoch))
        if move.segment_cut > expected.segment_cut:
            commit.set("segcut", move.segment_cut)
        if move.epoch_cut > expected.epoch_cut:
            commit.set("epcut", move.epoch_cut)
        condition = commit.equals("version", expected.version)
        return self._table.update(commit, counters_key(location_id, expected.product_id), condition, "NONE") is not None

    def ledger_pages(self, location_id: str, product_id: str, numbers: Sequence[int]) -> dict[int, list[LedgerEntry]]:
        keys = {number: ledger_page_key(location_id, product_id, number) for number in dict.fromkeys(numbers)}
        number_of = {(k["pk"], k["sk"]): number for number, k in keys.items()}
        found: dict[int, list[LedgerEntry]] = {}
        for item in self._table.get_many(list(keys.values())):
            page = from_ddb(item)
            found[number_of[(page["pk"], page["sk"])]] = _entries_of_page(page)
        return found
