"""The relay publishes what the outbox holds, oldest first, and keeps what the bus refused."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from inventory.adapters.dynamodb.keys import location_pk, outbox_shard
from inventory.errors import TemporarilyUnavailable
from inventory.models import OutboxEvent
from inventory.services import outbox
from inventory.services.outbox import OutboxRelay, poll
from tests.unit.fakes import FixedClock, MemoryPublisher, MemoryRepository, location_item


def event(clock: FixedClock, event_id: str, minutes_ago: int = 0) -> OutboxEvent:
    return OutboxEvent(
        event_id=event_id,
        detail_type="Inventory Master Switched",
        occurred_at=clock.now() - timedelta(minutes=minutes_ago),
        detail={"location_id": "s1"},
    )


def in_one_shard(count: int) -> list[str]:
    """Locations whose items share one shard of the outbox, in the order the shard lists them."""
    return sorted(f"s{n}" for n in range(100) if outbox_shard(location_pk(f"s{n}")) == 0)[:count]


def test_every_waiting_event_is_published_oldest_first_then_forgotten() -> None:
    clock, repo, bus = FixedClock(), MemoryRepository(), MemoryPublisher()
    repo.record(location_item("s1"), event(clock, "b", minutes_ago=1))
    repo.record(location_item("s1"), event(clock, "a", minutes_ago=2))
    relay = OutboxRelay(repo, bus, clock)

    first = relay.run_once()
    second = relay.run_once()

    assert [e.event_id for e in bus.published] == ["a", "b"]
    assert (first.published, first.failed, first.oldest_pending_seconds) == (2, 0, 120.0)
    assert (second.published, second.oldest_pending_seconds) == (0, 0.0)


def test_an_event_the_bus_refused_stays_for_the_next_round() -> None:
    clock, repo = FixedClock(), MemoryRepository()
    repo.record(location_item("s1"), event(clock, "a"))
    repo.record(location_item("s1"), event(clock, "b"))
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
    first, *others = locations = in_one_shard(3)
    for location in locations:
        repo.record(location_item(location), event(clock, f"{location}-0"))

    for n in range(1, 4):
        relay.run_once()
        repo.record(location_item(first), event(clock, f"{first}-{n}"))  # a new event after every round

    assert [e.event_id for e in bus.published] == [f"{location}-0" for location in (first, *others)]


def test_a_round_reads_its_items_together_and_publishes_their_events_together() -> None:
    clock, repo = FixedClock(), MemoryRepository()
    one, two, three = in_one_shard(3)
    for location in (one, two, three):
        repo.record(location_item(location), event(clock, f"{location}-a"))
    repo.record(location_item(two), event(clock, f"{two}-b"))
    bus, calls = MemoryPublisher(refuse={f"{two}-b"}), {"read": 0, "publish": 0}
    read, publish = repo.read_pending, bus.publish

    def counted(name: str, call: Any) -> Any:
        def inner(*args: Any) -> Any:
            calls[name] += 1
            return call(*args)

        return inner

    repo.read_pending = counted("read", read)  # type: ignore[method-assign]
    bus.publish = counted("publish", publish)  # type: ignore[method-assign]

    result = OutboxRelay(repo, bus, clock).run_once()

    assert calls == {"read": 1, "publish": 1}  # the three items share a shard
    assert (result.published, result.failed) == (3, 1)
    assert {location: [e.event_id for e in repo.pending_events(location)] for location in (one, two, three)} == {
        one: [],
        two: [f"{two}-b"],  # each item keeps what the bus refused of its own
        three: [],
    }


def test_a_run_of_the_relay_publishes_once_the_bus_is_back_and_stops_before_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given an outbox with an event and a bus that is down for the first round, when the relay polls
    with 5 s left, stopping 1.5 s before its deadline, then it publishes the event in the second
    round, goes on at once after it, pauses after each empty round, and never sleeps past the stop."""
    clock, repo = FixedClock(), MemoryRepository()
    repo.record(location_item("s1"), event(clock, "a", minutes_ago=1))
    bus = MemoryPublisher()
    publish, waits, deadline = bus.publish, [], clock.now() + timedelta(seconds=5)

    def down_once(events: Any) -> Any:
        bus.publish = publish  # type: ignore[method-assign]
        raise TemporarilyUnavailable("the bus is down")

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds=seconds)

    def remaining_ms() -> int:
        return int((deadline - clock.now()).total_seconds() * 1000)

    bus.publish = down_once  # type: ignore[method-assign]
    monkeypatch.setattr(outbox, "time", SimpleNamespace(sleep=sleep))

    run = poll(
        OutboxRelay(repo, bus, clock), remaining_ms, stop_before_ms=1_500, pause_seconds=0.5, backoff_cap_seconds=2
    )

    assert [e.event_id for e in bus.published] == ["a"]
    assert (run.published, run.failed) == (1, 0)
    assert 0.5 <= waits[0] <= 1.0  # after the failed round: the pause and up to as much again
    assert waits[1] == 0.0  # after the round that published: at once
    assert set(waits[2:-1]) == {0.5}  # after each empty round: the pause
    assert run.rounds == len(waits)
    assert remaining_ms() >= 1_500  # the last wait stops at the stop
    assert run.lags[0] == pytest.approx(60 + waits[0])  # the event's age when the second round read it
