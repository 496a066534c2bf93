"""Shipments and handovers: parsed strictly, applied once per line, refused when they can never succeed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inventory.errors import EventIdReused, InvalidInput
from inventory.messages.shipment_events import ShipmentEvent, parse_queued_event
from inventory.models import ImportKind, InventoryMaster, LedgerKind
from inventory.services.shipment_events import Shipment, ShipmentService, shipment_of
from inventory.services.stock import StockService
from tests.unit.test_import_service import World


def parse_shipment(message: str) -> Shipment:
    event = parse_queued_event(message)
    assert isinstance(event, ShipmentEvent)
    return shipment_of(event)


def bus_message(
    detail: dict[str, Any], detail_type: str = "Fulfillment Items Shipped", source: str = "fulfilment"
) -> str:
    return json.dumps({"version": "0", "id": "x", "detail-type": detail_type, "source": source, "detail": detail})


def shipment(event_id: str = "ev-1", **changes: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "location_id": "s1",
        "shipment_id": "sh-1",
        "logical_timestamp": 11,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": [{"product_id": "a", "quantity": 2}, {"product_id": "b", "quantity": 1, "allocation_id": "al-1"}],
    } | changes


def test_each_line_leaves_main_stock_once_whatever_the_redeliveries() -> None:
    world = World()
    world.import_inline("i1", ImportKind.INITIAL, {"a": 5, "b": 5}, shipments_included_through=10)
    service = ShipmentService(world.repo, StockService(world.repo), world.clock)
    message = bus_message(shipment())

    first = service.apply(parse_shipment(message))
    again = service.apply(parse_shipment(message))

    assert (first.lines, again.lines, again.repeated) == (2, 0, 2)
    assert (world.soh("a"), world.soh("b")) == (3, 4)


def test_a_handover_is_a_handover_and_an_included_shipment_changes_nothing() -> None:
    world = World()
    world.import_inline("i1", ImportKind.INITIAL, {"a": 5}, shipments_included_through=10)
    service = ShipmentService(world.repo, StockService(world.repo), world.clock)

    handover = parse_shipment(bus_message(shipment(logical_timestamp=9), "Fulfillment Items Handed Over"))
    service.apply(handover)

    assert handover.kind is LedgerKind.HANDOVER
    assert world.soh("a") == 5  # the import already included timestamp 9


def test_after_the_switch_a_shipment_the_pre_switch_import_included_changes_nothing() -> None:
    """SPEC.md section 3: the switch's base keeps the watermark of the import its figure came from."""
    world = World()
    world.import_inline("i1", ImportKind.INITIAL, {"a": 5}, shipments_included_through=10)
    world.locations.switch("s1", InventoryMaster.PLATFORM, "tester")
    world.clock.advance(seconds=1)
    service = ShipmentService(world.repo, StockService(world.repo), world.clock)

    service.apply(parse_shipment(bus_message(shipment(logical_timestamp=3))))
    included = world.soh("a")
    service.apply(parse_shipment(bus_message(shipment("ev-2", logical_timestamp=11))))

    assert included == 5  # at or below the import's shipments_included_through: already in its figure
    assert world.soh("a") == 3  # above it: after the base


def test_the_same_event_id_with_another_body_is_refused() -> None:
    world = World()
    service = ShipmentService(world.repo, StockService(world.repo), world.clock)
    service.apply(parse_shipment(bus_message(shipment())))

    with pytest.raises(EventIdReused):
        service.apply(parse_shipment(bus_message(shipment(logical_timestamp=12))))


def test_an_unknown_location_can_never_succeed() -> None:
    world = World()
    with pytest.raises(InvalidInput):
        ShipmentService(world.repo, StockService(world.repo), world.clock).apply(
            parse_shipment(bus_message(shipment(location_id="nowhere")))
        )


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (bus_message(shipment(items=[{"product_id": "a", "quantity": 0}])), "detail.items[0].quantity"),
        (bus_message(shipment(items=[{"product_id": "a", "quantity": 1.5}])), "detail.items[0].quantity"),
        (bus_message(shipment(items=[])), "detail.items"),
        (bus_message({k: v for k, v in shipment().items() if k != "event_id"}), "detail.event_id"),
        (bus_message(shipment(logical_timestamp="11")), "detail.logical_timestamp"),
        # an import's shipments_included_through is below 2^63: no later shipment can be compared with it
        (bus_message(shipment(logical_timestamp=2**63)), "detail.logical_timestamp"),
        (bus_message(shipment(location_id="bad id")), "detail.location_id"),
    ],
)
def test_invalid_events_are_refused_naming_the_field(message: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_shipment(message)
    assert field in {d["field"] for d in refused.value.details}


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        bus_message(shipment(), detail_type="Stock Imported"),
        bus_message(shipment(), source="inventory-master"),
    ],
)
def test_messages_that_are_not_shipments_are_refused(message: str) -> None:
    with pytest.raises(InvalidInput):
        parse_shipment(message)
