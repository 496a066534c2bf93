"""The relay: publishes committed outbox events, at least once, and forgets them afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from inventory.errors import TemporarilyUnavailable
from inventory.models import OutboxEvent
from inventory.observability import logger
from inventory.ports import Clock, EventPublisher, OutboxStore

# Completes the events of one detail type that a relay round publishes, as they are published
# (together, so that what they share is read once).
Finisher = Callable[[Sequence[OutboxEvent]], list[OutboxEvent]]


@dataclass(frozen=True)
class RelayRound:
    published: int
    failed: int
    oldest_pending_seconds: float  # age of the oldest event seen this round, 0 when none


@dataclass(frozen=True)
class RelayRun:
    published: int
    failed: int
    rounds: int
    worst_lag_seconds: float  # the oldest event's age in the round that saw the oldest, 0 when none


class OutboxRelay:
    def __init__(
        self,
        store: OutboxStore,
        publisher: EventPublisher,
        clock: Clock,
        batch: int = 100,
        finishers: Mapping[str, Finisher] | None = None,
    ) -> None:
        """`finishers`, by detail type: what completes an event as it is published (the figures of
        a `Shipment Applied` event are those of the moment it is published, with their version)."""
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._batch = batch
        self._finishers = dict(finishers or {})
        self._after: dict[int, tuple[str, str] | None] = {}  # per shard: where the next round goes on

    def _finished(self, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        finished = {e.event_id: e for e in events}
        for detail_type, finish in self._finishers.items():
            these = [e for e in events if e.detail_type == detail_type]
            if these:
                finished |= {e.event_id: e for e in finish(these)}
        return [finished[e.event_id] for e in events]

    def run_once(self) -> RelayRound:
        """One pass over every shard: publish what waits, up to `batch` items per shard, going on
        where the last pass stopped (round each shard, so that no item waits behind busier ones).
        A shard's items are read together and their events published together (the bus takes 10
        per call); then each item drops what was accepted of its own."""
        published = failed = 0
        oldest: datetime | None = None
        for shard in range(self._store.shards):
            keys, self._after[shard] = self._store.pending_keys(shard, self._batch, self._after.get(shard))
            if not keys:
                continue
            pending = self._store.read_pending(keys)
            events = sorted(
                (event for item_events, _ in pending.values() for event in item_events),
                key=lambda e: (e.occurred_at, e.event_id),
            )
            if events:
                oldest = min(oldest, events[0].occurred_at) if oldest else events[0].occurred_at
            accepted = set(self._publisher.publish(self._finished(events))) if events else set()
            published += len(accepted)
            failed += len(events) - len(accepted)
            for key, (item_events, version) in pending.items():
                ids = [e.event_id for e in item_events if e.event_id in accepted]
                self._store.mark_published(key, ids, version if len(ids) == len(item_events) else None)
        lag = (self._clock.now() - oldest).total_seconds() if oldest else 0.0
        return RelayRound(published=published, failed=failed, oldest_pending_seconds=max(lag, 0.0))

    def run(self, remaining_ms: Callable[[], int], stop_before_ms: int, pause_seconds: float) -> RelayRun:
        """Rounds until `stop_before_ms` before the deadline: after a round that published nothing,
        or one that failed for now (logged), it waits `pause_seconds` before the next."""
        published = failed = rounds = 0
        worst_lag = 0.0
        while remaining_ms() > stop_before_ms:
            rounds += 1
            try:
                result = self.run_once()
            except TemporarilyUnavailable as error:
                logger.warning("relay round failed; retrying", extra={"reason": error.message})
                time.sleep(pause_seconds)
                continue
            published += result.published
            failed += result.failed
            worst_lag = max(worst_lag, result.oldest_pending_seconds)
            if result.published == 0:
                time.sleep(pause_seconds)
        return RelayRun(published=published, failed=failed, rounds=rounds, worst_lag_seconds=worst_lag)
