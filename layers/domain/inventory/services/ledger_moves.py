"""Moving entries out of a product's buffer to its ledger pages, on the write path (docs/data-design.md,
"Bounded history": "Background: moving entries out"). A line whose write leaves the buffer over
BUFFER_ENTRIES moves the oldest settled entries, in writes of its own: the page, then the commit on
the hot item. Every step is a conditional write on what was read: run by two lines at once, or again
after a stop, it moves each entry once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from inventory.ledger import epoch_of_legacy
from inventory.messages import DetailType
from inventory.models import ABANDONED_AFTER, SEGMENT, CountStatus, LedgerKind, Location
from inventory.models.counters import LedgerEntry, PageMove, ProductCounters
from inventory.models.counts import count_of_entry
from inventory.models.events import EventClaim
from inventory.models.transactions import TransactionStatus, transaction_of_entry

if TYPE_CHECKING:
    from inventory.ports import Clock, MoveRepositories

BUFFER_ENTRIES = 16  # a line whose write leaves more entries than this in the buffer moves the oldest out
PAGE_ENTRIES = 16  # the most entries a ledger page holds
# The fewest a move takes: while the events of older entries wait for their redelivery, the buffer
# grows by the lines of those events only, and pages are not written a line at a time.
MIN_PAGE_ENTRIES = 8
CANDIDATES = 48  # the oldest entries of the buffer a move considers (their events' records are read together)
MOVES_PER_LINE = 3  # pages a line moves at most, when the buffer fell behind
# Segment (and epoch) pointers a hot item keeps; below them, a read of the pages starts at page 1.
POINTERS_KEPT = 64
# An event whose lines were completed by another delivery than the one that claimed it first: that
# first delivery may still be writing blind (it does not read), for at most its function's timeout.
# Its entries leave the buffer only this long after (the shipment events function's 60 s, and a margin).
SETTLED_AFTER = timedelta(seconds=120)


class EntryMover:
    def __init__(self, repository: MoveRepositories, clock: Clock, settled_after: timedelta = SETTLED_AFTER) -> None:
        self._repo = repository
        self._clock = clock
        self._settled_after = settled_after

    def move_out(self, location: Location, product_id: str) -> None:
        """Move the oldest entries of the buffer whose events are settled to the product's next
        ledger page, until the buffer holds at most BUFFER_ENTRIES (or nothing more may move)."""
        for _ in range(MOVES_PER_LINE):
            counters = self._repo.counters_of(location.location_id, product_id)
            if counters.legacy or counters.buffered <= BUFFER_ENTRIES:
                return
            move = self.page_of(location, counters)
            if move is None:
                return
            self._repo.move_to_page(location.location_id, move)  # False: it changed meanwhile, read again

    def page_of(self, location: Location, counters: ProductCounters) -> PageMove | None:
        """What to move of this state of the product: its oldest settled entries (at least
        MIN_PAGE_ENTRIES), their unpublished events, and the sums and pointers no read needs."""
        oldest = counters.ledger[:CANDIDATES]
        lines = sorted({event_of(e.entry_id) for e in oldest if e.kind.moves_stock_under_erp})
        claims = self._repo.event_claims(location.location_id, lines) if lines else {}
        transactions = sorted({transaction_of_entry(e.entry_id) for e in oldest if e.kind.is_transaction})
        states = self._repo.transaction_states(location.location_id, transactions) if transactions else {}
        counts = sorted({count_of_entry(e.entry_id) for e in oldest if e.kind is LedgerKind.COUNT})
        count_states = self._repo.count_states(location.location_id, counts) if counts else {}
        now = self._clock.now()

        def settled(entry: LedgerEntry) -> bool:
            if entry.kind.moves_stock_under_erp:
                return self.settled(claims.get(event_of(entry.entry_id)), now)
            if entry.kind is LedgerKind.COUNT:  # a retry of the results finds its entries in the buffer
                return count_states.get(count_of_entry(entry.entry_id)) is CountStatus.COMPLETED
            # A transaction's entries stay while it is pending: undoing it takes them out of the buffer.
            state = states.get(transaction_of_entry(entry.entry_id))
            return state is TransactionStatus.COMPLETED or (state is None and entry.applied_at <= now - ABANDONED_AFTER)

        entries = [e for e in oldest if settled(e)][:PAGE_ENTRIES]
        if len(entries) < MIN_PAGE_ENTRIES:
            return None
        entries = [e.model_copy(update={"epoch": epoch_of_legacy(location, e)}) if e.legacy else e for e in entries]
        events = [
            counters.pending[event_id]
            for e in entries
            if (event_id := applied_event_id(location.location_id, e.entry_id)) in counters.pending
        ]
        announced = location.announced()
        # Layers claimed before this batch read the location and no longer announced can never be
        # a base again (failed, or superseded by a baseline); later ones it cannot know of.
        drop_sums = [n for n in counters.sums if n and n <= location.import_seq and n not in announced]
        drop_moved = [(s, n) for s, n in counters.moved if n and n <= location.import_seq and n not in announced]
        lowest = location.lowest_origin()  # (merged rows' origins too)
        oldest_layer = lowest if lowest is not None else location.import_seq + 1
        drop_epochs, epoch_cut = kept_at_most(sorted(counters.epochs), oldest_layer, counters.epoch_cut)
        drop_segments, cut = segments_to_drop(location, counters)
        return PageMove(
            expected=counters,
            entries=tuple(entries),
            events=tuple(events),
            drop_sums=tuple(drop_sums),
            drop_moved=tuple(drop_moved),
            drop_segments=tuple(drop_segments),
            drop_epochs=tuple(drop_epochs),
            segment_cut=cut,
            epoch_cut=epoch_cut,
        )

    def settled(self, claim: EventClaim | None, now: datetime) -> bool:
        """Whether an entry of the event with this record may leave the buffer: every line of the
        event is applied (a redelivery then stops at the record), and no delivery may still write
        one of them blind. No record (or one past its keeping): any delivery now is refused as too old."""
        if claim is None or claim.keep_until < now:
            return True
        if not claim.done:
            return False
        return claim.first or (claim.done_at is not None and claim.done_at <= now - self._settled_after)


def segments_to_drop(location: Location, counters: ProductCounters) -> tuple[list[int], int]:
    """The segment pointers no import or base can need: below the lowest watermark a visible layer
    names or a later import may name (never below the last completed one's); and beyond
    POINTERS_KEPT, the oldest (then `segment_cut` says that reading them starts at page 1)."""
    floor = location.watermark()
    drop: list[int] = []
    if floor is not None:
        named = location.lowest_watermark()  # (merged rows' watermarks too)
        lowest = min(floor, named if named is not None else floor) // SEGMENT
        drop = [s for s in counters.segments if s < lowest]
    kept = sorted(s for s in counters.segments if s not in drop)
    dropped, cut = kept_at_most(kept, None, counters.segment_cut)
    return drop + dropped, cut


def kept_at_most(pointers: list[int], below: int | None, cut: int) -> tuple[list[int], int]:
    """Of a hot item's page pointers (segments or epochs, ascending), those to drop: below `below`
    (no read can ask for them), and beyond POINTERS_KEPT, the oldest; and the cut below which a
    read starts at page 1. A merged row keeps its origin's watermark and epoch for as long as no
    later import names its product, so without the bound they would grow with the imports."""
    drop = [p for p in pointers if below is not None and p < below]
    kept = [p for p in pointers if p not in drop]
    if len(kept) > POINTERS_KEPT:
        dropped = kept[: len(kept) - POINTERS_KEPT]
        drop += dropped
        cut = max(cut, dropped[-1] + 1)
    return drop, cut


# ---------------------------------------------------------------- a shipment line's entry and event ids
def entry_id_of(event_id: str, index: int) -> str:
    """The entry id of line `index` of a shipment event: `<event id>:<line>`."""
    return f"{event_id}:{index}"


def event_of(entry_id: str) -> str:
    """The event id of a shipment line's entry id."""
    return entry_id.rpartition(":")[0]


def applied_key(location_id: str, entry_id: str) -> str:
    """What the id of the line's `Shipment Applied` part derives from (`OutboxEvent.of`'s key)."""
    event_id, _, index = entry_id.rpartition(":")
    return f"{location_id}/{event_id}/{index}"


def applied_event_id(location_id: str, entry_id: str) -> str:
    """The id of the `Shipment Applied` part of a line's entry (as `OutboxEvent.of` derives it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{DetailType.SHIPMENT_APPLIED}/{applied_key(location_id, entry_id)}"))


__all__: Sequence[str] = (
    "BUFFER_ENTRIES",
    "PAGE_ENTRIES",
    "SETTLED_AFTER",
    "EntryMover",
    "applied_event_id",
    "applied_key",
    "entry_id_of",
    "event_of",
)
