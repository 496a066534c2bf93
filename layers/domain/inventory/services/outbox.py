"""The relay: publishes committed outbox events, at least once, and forgets them afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from inventory.backoff import Backoff
from inventory.errors import TemporarilyUnavailable
from inventory.models import OutboxEvent
from inventory.observability import logger

if TYPE_CHECKING:
    from inventory.ports import Clock, EventPublisher, OutboxStore

# Completes the events of one detail type that a relay round publishes, as they are published
# (together, so that what they share is read once).
Finisher = Callable[[Sequence[OutboxEvent]], list[OutboxEvent]]


@dataclass(frozen=True)
class RelayRound:
    published: int
    failed: int
    oldest_pending_seconds: float  # age of the oldest event seen this round, 0 when none


@dataclass
class RelayRun:
    published: int = 0
    failed: int = 0
    rounds: int = 0
    # The oldest waiting event's age, of every round that read the outbox (also of a round whose events
    # the bus refused): none when no round could read it.
    lags: list[float] = field(default_factory=list)

    @property
    def worst_lag_seconds(self) -> float | None:
        return max(self.lags) if self.lags else None


class Rounds(Protocol):
    def run_once(self) -> RelayRound: ...


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


def poll(
    relay: Rounds,
    remaining_ms: Callable[[], int],
    stop_before_ms: int,
    pause_seconds: float,
    backoff_cap_seconds: float,
) -> RelayRun:
    """Relay rounds until `stop_before_ms` before the deadline. After a round with nothing to publish
    the next waits `pause_seconds`, after one that published all it found it goes on at once, and
    after one that failed (the bus refused events, or DynamoDB the reads) it waits longer, the longer
    the more rounds failed in a row (the service's backoff rule, at most `backoff_cap_seconds` more),
    so that a failing bus is asked less often while it fails and again within seconds once it is
    back. No wait goes past the stop."""
    backoff = Backoff(base=pause_seconds, cap=backoff_cap_seconds)
    run = RelayRun()
    while remaining_ms() > stop_before_ms:
        run.rounds += 1
        try:
            result = relay.run_once()
        except TemporarilyUnavailable as error:
            wait = pause_seconds + backoff.failed()
            logger.warning("relay round failed; retrying", extra={"reason": error.message, "wait_seconds": wait})
        else:
            run.published += result.published
            run.failed += result.failed
            run.lags.append(result.oldest_pending_seconds)
            if result.failed:
                wait = pause_seconds + backoff.failed()
                logger.warning(
                    "the bus did not take every event; retrying",
                    extra={
                        "published": result.published,
                        "failed": result.failed,
                        "lag_seconds": result.oldest_pending_seconds,
                        "wait_seconds": wait,
                    },
                )
            else:
                backoff.succeeded()
                wait = 0.0 if result.published else pause_seconds  # a backlog goes on at once
        time.sleep(max(0.0, min(wait, (remaining_ms() - stop_before_ms) / 1000)))
    return run
