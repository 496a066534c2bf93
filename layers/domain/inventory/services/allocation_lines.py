"""Where an allocation's open part of a product is, and moving it there (docs/data-design.md,
"Bounded history": "Open allocations").

A product's hot item holds a few allocations (`A#<id>`: those still pending, and up to
HELD_ALLOCATIONS settled ones) and `allocated`, the total of all of them; the others are
allocation lines, items of their own sorted by the order received. A held allocation is the truth
while it is held (quantity 0: a tombstone, closed and waiting to be cleared); else its line, less
what entries of the buffer closed of it that the line does not record yet; else nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from inventory.backoff import until_written
from inventory.models import AllocationStatus, epoch_ms
from inventory.models.allocations import AllocationMove
from inventory.models.counters import CountersChange, LedgerEntry, LineClose, OpenAllocation, ProductCounters

if TYPE_CHECKING:
    from inventory.ports import AllocationLineRepository, Clock, LineRepositories

HELD_ALLOCATIONS = 8  # a write that leaves more held than this moves the oldest settled ones out
MOVE_ALLOCATIONS = 16  # the most one move takes
LINES_PAGE = 100  # the most allocation lines one read asks for
# A mover's claim older than this is taken over: its mover stopped (a function runs 60 s at most).
CLAIM_EXPIRES = timedelta(seconds=120)
# How long a product found holding allocations is read ahead rather than written blind, and how many
# such products a warm function remembers (AllocationHolders).
ALLOCATED_KEPT = timedelta(minutes=5)
ALLOCATED_REMEMBERED = 10_000


def received_order(created_at: datetime) -> int:
    """Allocations of a product are served oldest first: by the time the service received them."""
    return int(created_at.timestamp() * 1_000_000)


def open_of_line(counters: ProductCounters, line: OpenAllocation) -> int:
    """What a line still holds, as this read of the hot item tells (its unapplied closes subtracted)."""
    return max(0, line.quantity - counters.unapplied_closes(line))


def oldest_open(
    repo: AllocationLineRepository, location_id: str, counters: ProductCounters, quantity: int
) -> tuple[list[OpenAllocation], dict[str, OpenAllocation]]:
    """The product's open allocations, oldest first, enough of them to cover `quantity` units when
    there are that many: every held one with units, and the first lines (each with what it still
    holds), read from the front; and the lines as read, by allocation id."""
    held = {a.allocation_id for a in counters.allocations}
    found = [a for a in counters.allocations if a.quantity > 0]
    read: dict[str, OpenAllocation] = {}
    if counters.allocated > sum(a.quantity for a in found):  # some are lines
        after: OpenAllocation | None = None
        covered = 0
        while covered < quantity:  # (a line whose closes are not all applied yet is rare: another page)
            page, more = repo.allocation_lines(
                location_id, counters.product_id, after, min(LINES_PAGE, quantity - covered + 1)
            )
            for line in page:
                left = open_of_line(counters, line)
                if line.allocation_id in held or left <= 0:
                    continue
                read[line.allocation_id] = line
                found.append(line.model_copy(update={"quantity": left}))
                covered += left
            if not more or not page:
                break
            after = page[-1]
    return sorted(found, key=lambda a: (a.received, a.allocation_id)), read


def closing_from(
    repo: LineRepositories, location_id: str, counters: ProductCounters, quantity: int, allocation_id: str | None
) -> tuple[list[OpenAllocation] | None, dict[str, OpenAllocation]]:
    """What a shipment line of `quantity` closes from, oldest first: the allocation it names, or else
    the product's oldest open ones; and the allocation lines as read. None when the named allocation
    has no record yet (the shipment overtook its creation)."""
    if allocation_id is None:
        return oldest_open(repo, location_id, counters, quantity) if counters.allocated else ([], {})
    held = counters.allocation(allocation_id)
    if held is not None:
        return [held], {}
    record = repo.get_allocation(location_id, allocation_id)
    if record is None:
        return None, {}
    found = repo.allocation_line(location_id, counters.product_id, received_order(record.created_at), allocation_id)
    if found is None or (left := open_of_line(counters, found)) <= 0:
        return [], {}
    return [found.model_copy(update={"quantity": left})], {found.allocation_id: found}


def open_part(repo: LineRepositories, location_id: str, product_id: str, allocation_id: str, received: int) -> int:
    """What the allocation still holds of the product."""
    counters = repo.counters_of(location_id, product_id)
    held = counters.allocation(allocation_id)
    if held is not None:
        return held.quantity
    line = repo.allocation_line(location_id, product_id, received, allocation_id)
    return open_of_line(counters, line) if line is not None else 0


def apply_closes(
    repo: AllocationLineRepository,
    location_id: str,
    product_id: str,
    entry: LedgerEntry,
    *,
    read: dict[str, OpenAllocation] | None = None,
    prune_with: ProductCounters | None = None,
) -> None:
    """Take what `entry` closed off its allocation lines, each once (the line records the entry).
    `read`: the lines as the decision read them; `prune_with`: the hot item as read before them,
    whose write of `entry` then applied, so the line's records of entries no longer in its buffer
    may go (every record on those lines is of an entry written before that read)."""
    in_buffer = {e.entry_id for e in prune_with.ledger} if prune_with is not None else set()
    for close in entry.closes:
        as_read = (read or {}).get(close.allocation_id)
        prune = [e for e in as_read.closed_by if e not in in_buffer] if as_read and prune_with else []
        unused = [as_read] if as_read is not None else []

        def step(
            close: LineClose = close, unused: list[OpenAllocation] = unused, prune: list[str] = prune
        ) -> bool | None:
            line = (
                unused.pop()
                if unused
                else repo.allocation_line(location_id, product_id, close.received, close.allocation_id)
            )
            if line is None or entry.entry_id in line.closed_by:
                return True  # applied (a line gone has nothing left to take)
            kept = [e for e in prune if e in line.closed_by]
            done = repo.close_allocation_line(
                location_id, product_id, line, entry_id=entry.entry_id, quantity=close.quantity, prune=kept
            )
            return True if done else None

        until_written(step, f"closing {close.allocation_id!r} of {product_id!r} for {entry.entry_id!r}")


def closes_of(
    candidates: Sequence[OpenAllocation], held: Collection[str], quantity: int
) -> tuple[dict[str, OpenAllocation | None], tuple[LineClose, ...]]:
    """What `quantity` units take, in the order given: the held allocations' new parts (0: a
    tombstone, it keeps its claim), and what each line gives."""
    left = quantity
    changes: dict[str, OpenAllocation | None] = {}
    closes: list[LineClose] = []
    for allocation in candidates:
        if left <= 0:
            break
        taken = min(left, allocation.quantity)
        if taken <= 0:
            continue
        left -= taken
        if allocation.allocation_id in held:
            changes[allocation.allocation_id] = allocation.model_copy(update={"quantity": allocation.quantity - taken})
        else:
            closes.append(
                LineClose(allocation_id=allocation.allocation_id, received=allocation.received, quantity=taken)
            )
    return changes, tuple(closes)


def release_part(
    repo: LineRepositories, clock: Clock, location_id: str, product_id: str, *, allocation_id: str, received: int
) -> None:
    """Free what the allocation still holds of the product: one write of the hot item (its part
    becomes a tombstone there, `allocated` lowered by what was open), then the tombstone is
    cleared (its line deleted, then the tombstone removed), unless a mover claims it."""

    def step() -> bool | None:
        counters = repo.counters_of(location_id, product_id)
        held = counters.allocation(allocation_id)
        if held is not None:
            if held.quantity == 0:
                return True  # released already (or closed by shipments)
            change = CountersChange(
                expected=counters, allocations={allocation_id: held.model_copy(update={"quantity": 0})}
            )
        else:
            line = repo.allocation_line(location_id, product_id, received, allocation_id)
            if line is None:
                return True  # nothing open
            tombstone = OpenAllocation(
                allocation_id=allocation_id, order_id=line.order_id, quantity=0, received=line.received
            )
            change = CountersChange(
                expected=counters, allocations={allocation_id: tombstone}, lines_delta=-open_of_line(counters, line)
            )
        return True if repo.change_counters(location_id, change) else None

    until_written(step, f"releasing {allocation_id!r} of {product_id!r}")
    counters = repo.counters_of(location_id, product_id)
    held = counters.allocation(allocation_id)
    if held is not None and held.quantity == 0 and held.claim is None:
        repo.move_allocations(location_id, AllocationMove(expected=counters, token=_token(clock), cleared=(held,)))


def _token(clock: Clock) -> str:
    return f"{epoch_ms(clock.now())}:{uuid.uuid4().hex[:12]}"


def _claimed_at(claim: str) -> int:
    return int(claim.partition(":")[0])


class AllocationMover:
    """Moves a product's settled held allocations out of its hot item once it holds more than
    HELD_ALLOCATIONS, and clears its tombstones."""

    def __init__(self, repository: LineRepositories, clock: Clock) -> None:
        self._repo = repository
        self._clock = clock

    def move_held(self, location_id: str, product_id: str, settled: Collection[str] = ()) -> None:
        """`settled`: allocations known to be settled (their records need not be read)."""
        token = _token(self._clock)
        for _ in range(3):
            counters = self._repo.counters_of(location_id, product_id)
            if len(counters.allocations) <= HELD_ALLOCATIONS:
                return
            move = self._move_of(location_id, counters, token, settled)
            if move is None:
                return
            if (
                self._repo.move_allocations(location_id, move)
                and len(counters.allocations) - len(move.moved + move.cleared) <= HELD_ALLOCATIONS
            ):
                return

    def _move_of(
        self, location_id: str, counters: ProductCounters, token: str, settled: Collection[str]
    ) -> AllocationMove | None:
        expired = epoch_ms(self._clock.now() - CLAIM_EXPIRES)
        free = [
            a for a in counters.allocations if a.claim is None or a.claim == token or _claimed_at(a.claim) < expired
        ][:MOVE_ALLOCATIONS]
        unknown = [a.allocation_id for a in free if a.allocation_id not in settled]
        records = self._repo.allocations_of(location_id, unknown) if unknown else {}
        movable = [
            a
            for a in free
            if a.allocation_id in settled
            or ((r := records.get(a.allocation_id)) is not None and r.status is not AllocationStatus.PENDING)
        ]
        if not movable:
            return None
        moved = tuple(a for a in movable if a.quantity > 0)
        cleared = tuple(a for a in movable if a.quantity == 0)
        taken_over = tuple(sorted({a.claim for a in moved if a.claim and a.claim != token}))
        return AllocationMove(expected=counters, token=token, moved=moved, cleared=cleared, taken_over=taken_over)


class AllocationHolders:
    """The products a warm function found holding allocations (a shipment line's blind write was
    refused), for ALLOCATED_KEPT: their lines are read ahead with their batch instead of written
    blind first. A guess that only chooses between two correct paths: a stale one costs a read,
    never a figure. At most ALLOCATED_REMEMBERED, so memory never grows with the catalogue."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until: dict[tuple[str, str], datetime] = {}

    def holds(self, location_id: str, product_id: str) -> bool:
        until = self._until.get((location_id, product_id))
        return until is not None and until > self._clock.now()

    def found(self, location_id: str, product_id: str) -> None:
        if len(self._until) >= ALLOCATED_REMEMBERED:
            self._until.clear()
        self._until[(location_id, product_id)] = self._clock.now() + ALLOCATED_KEPT

    def cleared(self, location_id: str, product_id: str) -> None:
        self._until.pop((location_id, product_id), None)
