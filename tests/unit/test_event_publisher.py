"""The EventBridge publisher against a fake client: events too large for the bus go out in parts
that each fit, with ids that a second publication gives again; a request the bus refuses fails
its own events only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from jsonschema import Draft202012Validator

from inventory.adapters.dynamodb.keys import location_pk, outbox_shard
from inventory.adapters.eventbridge import MAX_ENTRY_BYTES, MAX_REQUEST_BYTES, EventBridgePublisher, entry_size
from inventory.messages import DetailType
from inventory.messages.published import AllocationRefused
from inventory.models import OutboxEvent
from inventory.models.allocations import AllocationLine
from inventory.services.allocations import AllocationRequest
from inventory.services.outbox import OutboxRelay
from tests.unit.fakes import FixedClock, MemoryPublisher, MemoryRepository, location_item
from tests.unit.test_allocations import Shop
from tests.unit.test_messages import committed

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
# 128 characters, as long as a product id may be, of which JSON escapes each as 12 bytes (\ud83d\udce6).
PARCEL = "\U0001f4e6"


def long_id(n: int) -> str:
    return f"{n:03d}" + PARCEL * 125


class Bus:
    """EventBridge as the client sees it: each call takes what it is given, but the calls told to
    raise (by their number, from 1) and the entries told to be refused (by their event id)."""

    def __init__(self, raise_calls: dict[int, Exception] | None = None, refuse: set[str] | None = None) -> None:
        self.raise_calls = raise_calls or {}
        self.refuse = refuse or set()
        self.calls: list[list[dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        assert len(Entries) <= 10
        assert sum(entry_size(e) for e in Entries) <= MAX_REQUEST_BYTES
        if len(self.calls) in self.raise_calls:
            raise self.raise_calls[len(self.calls)]
        results: list[dict[str, Any]] = []
        for entry in Entries:
            if json.loads(entry["Detail"])["event_id"] in self.refuse:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "refused"})
            else:
                self.accepted.append(entry)
                results.append({"EventId": f"bus-{len(self.accepted)}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(entry["Detail"]) for entry in self.accepted]


def publisher(bus: Bus) -> EventBridgePublisher:
    return EventBridgePublisher("bus", client=bus)  # type: ignore[arg-type]


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents")


def switched(n: int) -> OutboxEvent:
    return OutboxEvent.of(
        DetailType.MASTER_SWITCHED,
        f"s{n}",
        AT,
        {
            "inventory_master": "platform",
            "previous_inventory_master": "erp",
            "master_switched_at": "2026-11-27T09:00:00Z",
            "switched_by": "tester",
        },
        key=f"s{n}",
    )


def refused(items: int, shortages: int) -> OutboxEvent:
    """An Allocation Refused event with `items` items and `shortages` shortages of long product ids."""
    return OutboxEvent.of(
        DetailType.ALLOCATION_REFUSED,
        "s1",
        AT,
        {
            "allocation_id": "al-1",
            "order_id": "o-1",
            "items": [{"product_id": long_id(n), "quantity": 1_000_000_000} for n in range(items)],
            "shortages": [
                {"product_id": long_id(n), "requested": 1_000_000_000, "available": 0, "uncounted": False}
                for n in range(shortages)
            ],
        },
        key="s1/al-1",
    )


def size(event: OutboxEvent) -> int:
    return entry_size(publisher(Bus())._entry(event))


# ------------------------------------------------------------------------------------ parts
def test_an_event_the_bus_takes_whole_goes_out_unchanged() -> None:
    event = refused(items=3, shortages=2)
    bus = Bus()

    accepted = publisher(bus).publish([event])

    assert accepted == [event.event_id]
    assert bus.details() == [{"event_id": event.event_id, **event.detail}]  # no part fields


def test_an_event_of_600_kb_goes_out_in_parts_that_each_fit_and_together_hold_it_all() -> None:
    """Given an Allocation Refused event of 600 KB (390 shortages of 128-character product ids),
    when it is published twice (as after a crash before the outbox forgot it), then it goes out
    in parts that each fit the bus, with the same ids both times, and its content is their union."""
    event = refused(items=1, shortages=390)
    assert size(event) > 600 * 1024
    first, again = Bus(), Bus()

    assert publisher(first).publish([event]) == [event.event_id]
    assert publisher(again).publish([event]) == [event.event_id]

    parts = first.details()
    assert len(parts) == 3
    assert [entry["Detail"] for entry in first.accepted] == [entry["Detail"] for entry in again.accepted]
    assert len({p["event_id"] for p in parts}) == 3
    assert event.event_id not in {p["event_id"] for p in parts}
    assert [(p["part_of"], p["part"], p["parts"]) for p in parts] == [(event.event_id, n, 3) for n in (1, 2, 3)]
    assert all(entry_size(entry) <= MAX_ENTRY_BYTES for entry in first.accepted)
    assert [s for p in parts for s in p["shortages"]] == event.detail["shortages"]  # in order, none twice
    for p in parts:
        assert {k: v for k, v in p.items() if k not in {"event_id", "part_of", "part", "parts", "shortages"}} == {
            k: v for k, v in event.detail.items() if k != "shortages"
        }
        AllocationRefused.model_validate_json(json.dumps(p), strict=True)
        Draft202012Validator(committed("Allocation Refused")).validate(p)
    print(f"\n600 KB event: {size(event)} bytes in parts of {[entry_size(e) for e in first.accepted]} bytes")


def test_the_largest_refusal_an_allocation_can_cause_goes_out_in_parts() -> None:
    """Given a store without stock, when an allocation from the bus asks for 100 products (the most
    an allocation holds) with ids of 128 characters that JSON escapes, then its Allocation Refused
    event (over 300 KB) reaches the bus in parts that each hold every item, fit their schema, and
    share out the shortages."""
    shop = Shop({"other": 1})
    lines = tuple(AllocationLine(product_id=long_id(n), quantity=1_000_000_000) for n in range(100))
    shop.allocations.create("s1", AllocationRequest("al-big", "o-big", lines), "tester", from_bus=True)
    (whole,) = [e for e in shop.repo.pending_events("s1") if e.detail_type == DetailType.ALLOCATION_REFUSED]
    bus = Bus()

    result = OutboxRelay(shop.repo, publisher(bus), shop.clock).run_once()

    parts = [d for d in bus.details() if d.get("allocation_id") == "al-big"]
    assert size(whole) > 300_000
    assert (result.failed, len(parts)) == (0, 2)
    assert all(p["items"] == whole.detail["items"] for p in parts)
    assert [s for p in sorted(parts, key=lambda p: p["part"]) for s in p["shortages"]] == whole.detail["shortages"]
    for p in parts:
        Draft202012Validator(committed("Allocation Refused")).validate(p)
    assert shop.repo.pending_events("s1") == []


def test_each_part_has_its_own_id_also_when_the_stored_detail_names_the_whole_events() -> None:
    """The outbox's table keeps an event's detail with its `event_id` in it."""
    event = refused(items=1, shortages=200)
    stored = event.model_copy(update={"detail": {"event_id": event.event_id, **event.detail}})
    bus = Bus()

    publisher(bus).publish([stored])

    ids = [d["event_id"] for d in bus.details()]
    assert len(ids) == len(set(ids)) == 2
    assert event.event_id not in ids
    assert {d["part_of"] for d in bus.details()} == {event.event_id}


def test_an_event_too_large_that_has_no_list_to_share_out_stays_and_the_others_go_out() -> None:
    huge = OutboxEvent.of(DetailType.MASTER_SWITCHED, "s9", AT, {"switched_by": "x" * MAX_ENTRY_BYTES}, key="s9")
    others = [switched(1), switched(2)]
    bus = Bus()

    accepted = publisher(bus).publish([others[0], huge, others[1]])

    assert accepted == [e.event_id for e in others]
    assert [d["event_id"] for d in bus.details()] == accepted


def test_a_part_that_fits_nowhere_keeps_its_whole_event_back() -> None:
    """One shortage alone larger than a part can hold: nothing of the event goes out."""
    event = refused(items=1, shortages=1)
    event = event.model_copy(
        update={"detail": {**event.detail, "shortages": [{"product_id": "p" * MAX_ENTRY_BYTES}, {"product_id": "q"}]}}
    )
    bus = Bus()

    assert publisher(bus).publish([event]) == []
    assert bus.calls == []


# ------------------------------------------------------------------------------------ refused requests
@pytest.mark.parametrize(
    "error", [throttled(), EndpointConnectionError(endpoint_url="https://events")], ids=["throttled", "unreachable"]
)
def test_a_refused_request_fails_its_own_events_and_the_other_requests_go_on(error: Exception) -> None:
    """Given 25 events (three requests: 10, 10 and 5), when the bus refuses the second request,
    then the events of the first and third are accepted, and the second's are not."""
    events = [switched(n) for n in range(25)]
    bus = Bus(raise_calls={2: error})

    accepted = publisher(bus).publish(events)

    assert [len(call) for call in bus.calls] == [10, 10, 5]
    assert accepted == [e.event_id for e in events[:10] + events[20:]]


def test_entries_the_bus_did_not_accept_are_not_published_and_the_rest_are() -> None:
    events = [switched(n) for n in range(4)]
    bus = Bus(refuse={events[1].event_id, events[3].event_id})

    assert publisher(bus).publish(events) == [events[0].event_id, events[2].event_id]


def test_an_event_whose_parts_were_not_all_accepted_is_not_published_and_goes_out_whole_again() -> None:
    """Parts of 256 KB go out one a request: when the request of the second is refused, the event
    stays unpublished, and the next publication sends every part again, with the same ids."""
    event = refused(items=1, shortages=390)
    bus = Bus(raise_calls={2: throttled()})

    assert publisher(bus).publish([event]) == []
    assert publisher(bus).publish([event]) == [event.event_id]

    sent = [json.loads(entry["Detail"])["event_id"] for call in bus.calls for entry in call]
    assert sent[:3] == sent[3:]  # the first publication's three parts, then the same three again
    assert [d["part"] for d in bus.details()] == [1, 3, 1, 2, 3]


def test_a_refused_request_leaves_its_events_in_the_outbox_and_the_round_goes_on_with_other_shards() -> None:
    """Given events in every shard of the outbox, when the bus refuses the round's first request,
    then the round publishes the rest, counts the refused ones as failed, and the next round
    publishes those."""
    repo = MemoryRepository()
    events = [switched(n) for n in range(40)]
    for n, event in enumerate(events):
        repo.record(location_item(f"s{n}"), event)
    shards = {outbox_shard(location_pk(f"s{n}")) for n in range(40)}
    bus = Bus(raise_calls={1: throttled()})
    relay = OutboxRelay(repo, publisher(bus), FixedClock())

    first = relay.run_once()
    second = relay.run_once()

    refused_ids = {json.loads(entry["Detail"])["event_id"] for entry in bus.calls[0]}
    assert len(shards) > 1
    assert (first.published, first.failed) == (40 - len(refused_ids), len(refused_ids))
    assert (second.published, second.failed) == (len(refused_ids), 0)
    assert sorted(d["event_id"] for d in bus.details()) == sorted(e.event_id for e in events)  # each once


def test_the_relay_counts_as_failed_what_the_publisher_did_not_accept() -> None:
    repo = MemoryRepository()
    for n in range(3):
        repo.record(location_item(f"s{n}"), switched(n))

    result = OutboxRelay(repo, MemoryPublisher(refuse={switched(1).event_id}), FixedClock()).run_once()

    assert (result.published, result.failed) == (2, 1)
