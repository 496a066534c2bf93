"""The relay publishes what the outbox holds, oldest first, and keeps what the bus refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inventory.models import OutboxEvent
from inventory.services.outbox import OutboxRelay
from tests.unit.fakes import FixedClock, MemoryPublisher, MemoryRepository


def event(clock: FixedClock, event_id: str, minutes_ago: int = 0) -> OutboxEvent:
    return OutboxEvent(
        event_id=event_id,
        detail_type="Inventory Master Switched",
        occurred_at=clock.now() - timedelta(minutes=minutes_ago),
        detail={"location_id": "s1"},
    )


def test_every_waiting_event_is_published_oldest_first_then_forgotten() -> None:
    clock, repo, bus = FixedClock(), MemoryRepository(), MemoryPublisher()
    repo.outbox["s1"] = [event(clock, "b", minutes_ago=1), event(clock, "a", minutes_ago=2)]
    relay = OutboxRelay(repo, bus, clock)

    first = relay.run_once()
    second = relay.run_once()

    assert [e.event_id for e in bus.published] == ["a", "b"]
    assert (first.published, first.failed, first.oldest_pending_seconds) == (2, 0, 120.0)
    assert (second.published, second.oldest_pending_seconds) == (0, 0.0)


def test_an_event_the_bus_refused_stays_for_the_next_round() -> None:
    clock, repo = FixedClock(), MemoryRepository()
    repo.outbox["s1"] = [event(clock, "a"), event(clock, "b")]
    bus = MemoryPublisher(refuse={"b"})
    relay = OutboxRelay(repo, bus, clock)

    result = relay.run_once()
    bus.refuse.clear()
    retry = relay.run_once()

    assert (result.published, result.failed) == (1, 1)
    assert retry.published == 1
    assert sorted(e.event_id for e in bus.published) == ["a", "b"]


def test_the_relay_goes_round_each_shard_so_a_busy_item_keeps_no_other_waiting() -> None:
    clock, repo, bus = FixedClock(), MemoryRepository(), MemoryPublisher()
    relay = OutboxRelay(repo, bus, clock, batch=1)
    for location in ("s1", "s2", "s3"):
        repo.record(location, event(clock, f"{location}-0"))

    for n in range(1, 4):
        relay.run_once()
        repo.record("s1", event(clock, f"s1-{n}"))  # s1 gets a new event after every round

    assert [e.event_id for e in bus.published] == ["s1-0", "s2-0", "s3-0"]


def test_a_round_reads_its_items_together_and_publishes_their_events_together() -> None:
    clock, repo = FixedClock(), MemoryRepository()
    for location in ("s1", "s2", "s3"):
        repo.record(location, event(clock, f"{location}-a"))
    repo.record("s2", event(clock, "s2-b"))
    bus, calls = MemoryPublisher(refuse={"s2-b"}), {"read": 0, "publish": 0}
    read, publish = repo.read_pending, bus.publish

    def counted(name: str, call: Any) -> Any:
        def inner(*args: Any) -> Any:
            calls[name] += 1
            return call(*args)

        return inner

    repo.read_pending = counted("read", read)  # type: ignore[method-assign]
    bus.publish = counted("publish", publish)  # type: ignore[method-assign]

    result = OutboxRelay(repo, bus, clock).run_once()

    assert calls == {"read": 1, "publish": 1}  # the fake has one shard
    assert (result.published, result.failed) == (3, 1)
    assert {location: [e.event_id for e in events] for location, events in repo.outbox.items()} == {
        "s1": [],
        "s2": ["s2-b"],  # each item keeps what the bus refused of its own
        "s3": [],
    }
