"""The relay: publishes committed outbox events, at least once, and forgets them afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inventory.ports import Clock, EventPublisher, OutboxStore


@dataclass(frozen=True)
class RelayRound:
    published: int
    failed: int
    oldest_pending_seconds: float  # age of the oldest event seen this round, 0 when none


class OutboxRelay:
    def __init__(self, store: OutboxStore, publisher: EventPublisher, clock: Clock, batch: int = 100) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._batch = batch

    def run_once(self) -> RelayRound:
        """One pass over every shard: publish what waits, oldest first."""
        published = failed = 0
        oldest: datetime | None = None
        for shard in range(self._store.shards):
            for key in self._store.pending_keys(shard, self._batch):
                events = sorted(self._store.read_pending(key), key=lambda e: (e.occurred_at, e.event_id))
                if not events:
                    self._store.mark_published(key, [], 0)
                    continue
                oldest = min(oldest, events[0].occurred_at) if oldest else events[0].occurred_at
                accepted = self._publisher.publish(events)
                published += len(accepted)
                failed += len(events) - len(accepted)
                self._store.mark_published(key, accepted, len(events))
        lag = (self._clock.now() - oldest).total_seconds() if oldest else 0.0
        return RelayRound(published=published, failed=failed, oldest_pending_seconds=max(lag, 0.0))
