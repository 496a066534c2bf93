"""Messages are contracts: every bus event in and out has a model, its JSON Schema is a committed
file generated from it, and what the service publishes is what the models and files say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator

from inventory.adapters.eventbridge import EventBridgePublisher
from inventory.messages import SOURCE, DetailType
from inventory.messages.published import PUBLISHED
from inventory.messages.schemas import event_schemas, file_name, main
from inventory.messages.shipment_events import DETAILS
from inventory.models import EVENT_SCHEMA_VERSION, CountReason, InventoryMaster
from inventory.models.counts import CountResult
from inventory.models.transactions import TransactionItem, TransactionRequest, TransactionType
from inventory.services.cycle_counts import CycleCountService
from inventory.services.outbox import OutboxRelay
from inventory.services.shipment_figures import ShipmentFigures
from inventory.services.transactions import TransactionService
from tests.conftest import ROOT
from tests.unit.test_allocations import Shop
from tests.unit.test_template import RESOURCES

EXPORTED = DetailType.AVAILABILITY_EXPORTED

SCHEMAS = ROOT / "schemas" / "events"


def committed(detail_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / file_name(DetailType(detail_type))).read_text())
    return schema


def test_the_bus_rule_routes_exactly_the_events_the_shipment_events_handler_takes() -> None:
    to_the_queue = {"Fn::GetAtt": ["FulfillmentQueue", "Arn"]}
    (rule,) = [
        r
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Events::Rule" and any(t["Arn"] == to_the_queue for t in r["Properties"]["Targets"])
    ]
    pattern = rule["Properties"]["EventPattern"]

    assert sorted(pattern["detail-type"]) == sorted(DETAILS)
    assert pattern["source"] == [{"anything-but": [SOURCE]}]


def test_every_event_in_and_out_has_a_model_and_a_schema_file() -> None:
    assert set(DETAILS) | set(PUBLISHED) == set(DetailType)
    assert not set(DETAILS) & set(PUBLISHED)
    assert sorted(path.name for path in SCHEMAS.glob("*.json")) == sorted(event_schemas())


@pytest.mark.parametrize("name", sorted(event_schemas()))
def test_each_committed_schema_is_what_its_model_gives(name: str) -> None:
    """When this fails, a model changed: run `make schemas` and commit the files with the change."""
    generated = event_schemas()[name]
    assert json.loads((SCHEMAS / name).read_text()) == generated
    Draft202012Validator.check_schema(generated)


def test_the_generator_finds_a_schema_that_disagrees_with_its_model(tmp_path: Path) -> None:
    assert main(["--check", str(SCHEMAS)]) == 0
    assert main([str(tmp_path)]) == 0
    edited = tmp_path / "stock-imported.json"
    edited.write_text(edited.read_text().replace('"import_id"', '"import"', 1))

    assert main(["--check", str(tmp_path)]) == 1


def test_every_event_carries_the_schema_version_its_model_names() -> None:
    for model in PUBLISHED.values():
        assert model.model_fields["schema_version"].annotation == Literal[EVENT_SCHEMA_VERSION]


class Bus:
    """EventBridge as the publisher's client sees it: every entry accepted."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"Entries": [{"EventId": f"bus-{len(self.entries)}-{n}"} for n in range(len(Entries))]}


def test_what_the_service_publishes_is_what_each_model_and_schema_file_say() -> None:
    """Given a store that imports, switches, ships (a known product and one nobody imported) and
    refuses an allocation from the bus, moves a unit to damaged stock and counts, every event the relay
    puts on the bus fits its contract."""
    shop = Shop({"a": 5})
    shop.locations.switch("s1", InventoryMaster.PLATFORM, "tester")
    shop.ship("ev-1", {"product_id": "a", "quantity": 1}, {"product_id": "ghost", "quantity": 2})
    shop.allocate("al-1", from_bus=True, a=100)
    TransactionService(shop.repo, shop.stock, shop.clock).record(
        "s1",
        TransactionRequest(
            transaction_id="adj-1",
            type=TransactionType.ADJUSTMENT,
            reason="damaged in the back room",
            items=(
                TransactionItem(product_id="a", quantity=1, from_stock_location="main", to_stock_location="damaged"),
            ),
        ),
        "tester",
    )
    counts = CycleCountService(shop.repo, shop.stock, shop.clock)
    counts.open("s1", "c1", CountReason.SCHEDULED, ["a"], "tester")
    counts.submit("s1", "c1", (CountResult(product_id="a", counted=2),))
    bus = Bus()
    publisher = EventBridgePublisher("bus", client=bus)  # type: ignore[arg-type]
    finishers = {DetailType.SHIPMENT_APPLIED: ShipmentFigures(shop.stock)}

    OutboxRelay(shop.repo, publisher, shop.clock, finishers=finishers).run_once()

    # (an export's event: tests/e2e/test_availability_exports_e2e.py holds those it receives to their schema)
    assert sorted({entry["DetailType"] for entry in bus.entries}) == sorted(set(PUBLISHED) - {EXPORTED})
    for entry in bus.entries:
        assert entry["Source"] == SOURCE
        model = PUBLISHED[DetailType(entry["DetailType"])]
        model.model_validate_json(entry["Detail"], strict=True)
        Draft202012Validator(committed(entry["DetailType"])).validate(json.loads(entry["Detail"]))


@pytest.mark.parametrize("sample", sorted((ROOT / "events").glob("shipment_events_*.json")), ids=lambda p: p.stem)
def test_the_sample_shipment_events_fit_their_schemas_but_the_poison_record(sample: Path) -> None:
    for record in json.loads(sample.read_text())["Records"]:
        event = json.loads(record["body"])
        errors = list(Draft202012Validator(committed(event["detail-type"])).iter_errors(event["detail"]))
        assert bool(errors) == ("poison" in sample.stem), [error.message for error in errors]


def test_a_part_of_an_event_says_which_part_of_how_many_of_which_event_it_is() -> None:
    """`part_of`, `part` and `parts` come together (a whole event has none), in the model as in the file."""
    whole = {
        "schema_version": 1,
        "event_id": "e-1",
        "location_id": "s1",
        "occurred_at": "2026-11-27T09:00:00Z",
        "allocation_id": "al-1",
        "order_id": "o-1",
        "items": [{"product_id": "a", "quantity": 2}],
        "shortages": [{"product_id": "a", "requested": 2, "available": 1, "uncounted": False}],
    }
    part = {**whole, "event_id": "e-1-part-2", "part_of": "e-1", "part": 2, "parts": 2}
    schema = Draft202012Validator(committed("Allocation Refused"))
    model = PUBLISHED[DetailType.ALLOCATION_REFUSED]

    for good in (whole, part):
        model.model_validate_json(json.dumps(good), strict=True)
        schema.validate(good)
    for bad in ({**whole, "part": 1}, {**part, "part": 3}):
        with pytest.raises(ValueError, match="part"):
            model.model_validate_json(json.dumps(bad), strict=True)
    assert not schema.is_valid({**whole, "part": 1, "parts": 2})  # no part_of
