"""The shipment event service: a parsed batch in, one outcome per record out; what one record fails
with fails that record alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inventory.errors import InvalidInput, TemporarilyUnavailable
from inventory.messages.shipment_events import QueuedEvent, parse_queued_event
from inventory.services.shipment_events import MIN_REMAINING_MS, ShipmentEventService
from tests.unit.test_allocations import Shop
from tests.unit.test_shipments import bus_message, shipment


def parsed(body: str) -> QueuedEvent | Exception:
    try:
        return parse_queued_event(body)
    except InvalidInput as error:
        return error


def allocation(event_id: str, allocation_id: str, **items: int) -> dict[str, Any]:
    lines = [{"product_id": product, "quantity": quantity} for product, quantity in items.items()]
    return {
        "event_id": event_id,
        "location_id": "s1",
        "allocation_id": allocation_id,
        "order_id": f"o-{allocation_id}",
        "items": lines,
    }


def service(shop: Shop) -> ShipmentEventService:
    shop.clock.advance(seconds=1)  # after the import: its shipments count
    return ShipmentEventService(shop.shipments, shop.allocations)


def plenty_of_time() -> int:
    return 60_000


def test_each_record_has_its_own_outcome_and_its_batch_mates_apply() -> None:
    shop = Shop({"a": 5, "b": 5})
    records = {
        "m-ok": parsed(bus_message(shipment("ok"))),
        "m-invalid": parsed(bus_message(shipment("bad", items=[{"product_id": "a", "quantity": -1}]))),
        "m-nowhere": parsed(bus_message(shipment("far", location_id="nowhere"))),
        "m-alloc": parsed(bus_message(allocation("c-1", "al-9", a=1), "Allocation Created")),
    }

    done = service(shop).apply(records, plenty_of_time)

    assert [(record, outcome.applied, outcome.final) for record, outcome in done.outcomes.items()] == [
        ("m-ok", True, False),
        ("m-invalid", False, True),
        ("m-nowhere", False, True),
        ("m-alloc", True, False),
    ]
    invalid = done.outcomes["m-invalid"].error
    assert isinstance(invalid, InvalidInput)
    assert [d["field"] for d in invalid.details] == ["detail.items[0].quantity"]
    assert (done.shipments, done.lines, done.repeated) == (1, 2, 0)
    assert shop.figures("a") == (3, 1, 2)


def test_a_record_is_not_started_with_too_little_time_left_and_fails_for_now() -> None:
    shop = Shop({"a": 5})
    left = iter([MIN_REMAINING_MS + 1, MIN_REMAINING_MS - 1])

    done = service(shop).apply(
        {"m-1": parsed(bus_message(shipment("e-1"))), "m-2": parsed(bus_message(shipment("e-2")))},
        lambda: next(left),
    )

    first, second = done.outcomes["m-1"], done.outcomes["m-2"]
    assert first.applied
    assert (second.applied, second.final, type(second.error)) == (False, False, TimeoutError)
    assert shop.figures("a") == (3, 0, 3)  # the first record's two units only


def test_a_transient_failure_fails_the_record_for_now(monkeypatch: pytest.MonkeyPatch) -> None:
    shop = Shop({"a": 5})

    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise TemporarilyUnavailable("throttled")

    monkeypatch.setattr(shop.repo, "claim_event", throttled)
    done = service(shop).apply({"m-1": parsed(bus_message(shipment()))}, plenty_of_time)

    assert (done.outcomes["m-1"].applied, done.outcomes["m-1"].final) == (False, False)


def test_a_read_ahead_that_fails_leaves_each_line_to_read_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    shop = Shop({"a": 5, "b": 5})
    shop.allocate("al-1", b=2)

    read, calls = shop.repo.product_states, []

    def unreachable_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:  # the batch's read ahead
            raise TemporarilyUnavailable("unreachable")
        return read(*args, **kwargs)

    monkeypatch.setattr(shop.repo, "product_states", unreachable_once)
    done = service(shop).apply({"m-1": parsed(bus_message(shipment()))}, plenty_of_time)

    assert done.outcomes["m-1"].applied
    assert shop.figures("b") == (4, 1, 3)  # its line closed one unit of al-1


def test_allocations_from_the_bus_open_and_release_and_a_duplicate_product_is_refused_by_field() -> None:
    shop = Shop({"a": 5})
    created = bus_message(allocation("c-1", "al-1", a=2), "Allocation Created")
    released = bus_message({"event_id": "r-1", "location_id": "s1", "allocation_id": "al-1"}, "Allocation Released")
    twice = json.loads(created)
    twice["detail"]["items"] *= 2

    done = service(shop).apply(
        {"m-1": parsed(created), "m-2": parsed(released), "m-3": parsed(json.dumps(twice))}, plenty_of_time
    )

    assert [o.applied for o in done.outcomes.values()] == [True, True, False]
    refused = done.outcomes["m-3"].error
    assert isinstance(refused, InvalidInput)
    assert [(d["field"], d["code"]) for d in refused.details] == [("detail.items", "duplicate_product")]
    assert shop.figures("a") == (5, 0, 5)


def test_a_product_found_holding_allocations_is_read_ahead_until_it_holds_none(monkeypatch: pytest.MonkeyPatch) -> None:
    shop = Shop({"a": 10})
    shop.allocate("al-1", a=3)
    blind, append = [], shop.repo.append_entry

    def counted(*args: Any, **kwargs: Any) -> Any:
        blind.append(args[1])
        return append(*args, **kwargs)

    monkeypatch.setattr(shop.repo, "append_entry", counted)
    events = service(shop)
    for n in range(5):
        line = shipment(f"ev-{n}", shipment_id=f"sh-{n}", items=[{"product_id": "a", "quantity": 1}])
        assert events.apply({f"m-{n}": parsed(bus_message(line))}, plenty_of_time).outcomes[f"m-{n}"].applied
        shop.clock.advance(seconds=1)

    # The first line's blind write was refused (a holds al-1); the next two read ahead and closed
    # it; the fourth, read ahead once more, found nothing allocated; the fifth wrote blind again.
    assert blind == ["a", "a"]
    assert shop.figures("a") == (5, 0, 5)
