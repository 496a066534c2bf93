"""The relay against a bus that refuses requests, through the real handler on the local backends:
faults are injected at the relay's EventBridge client (tests/faults.py), never in domain code.

Each test has a table of its own (the session's holds other tests' backlog), and reads what
reached the bus from a queue subscribed to it, as a consumer would.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from inventory import wiring
from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.models import OutboxEvent
from inventory.settings import settings_of
from inventory.settings.outbox_relay import OutboxRelaySettings
from tests.conftest import FakeContext, load_handler, sqs_event
from tests.faults import Faults
from tests.integration.test_allocations import QUEUE_ARN, from_bus, load
from tests.integration.test_outbox_relay import drained
from tests.unit.test_messages import committed
from tests.unit.test_template import RESOURCES

pytestmark = pytest.mark.integration

STOP_MS = 5_000  # the relay stops polling this long before its timeout


def committed_events(repo: DynamoDbRepository) -> list[OutboxEvent]:
    """Every event waiting in the table's outbox."""
    keys = [key for shard in range(repo.shards) for key in repo.pending_keys(shard, 1000)[0]]
    return [event for events, _ in repo.read_pending(keys).values() for event in events]


def shipped(locations: int, products: int) -> str:
    """Stores loaded with `products` products each, and a shipment of one of each: one Stock
    Imported event per store, and a Shipment Applied part per line, over every shard of the outbox."""
    prefix = f"bus-{uuid.uuid4().hex[:6]}"
    fulfilment = load_handler("shipment_events")
    for n in range(locations):
        location = f"{prefix}-{n}"
        load(location, {f"p{k}": 5 for k in range(products)})
        detail = {
            "event_id": f"ship-{location}",
            "location_id": location,
            "shipment_id": "s-1",
            "logical_timestamp": 1,
            "occurred_at": "2026-11-30T09:00:00Z",
            "items": [{"product_id": f"p{k}", "quantity": 1} for k in range(products)],
        }
        message = from_bus("Fulfillment Items Shipped", detail, f"m-{location}")
        answer = fulfilment.lambda_handler(sqs_event([message], QUEUE_ARN), FakeContext(remaining_ms=60_000))
        assert answer == {"batchItemFailures": []}
    return prefix


def run_relay(seconds: float, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of the relay handler polling for `seconds`; what it answered, and the metrics it
    published (the embedded metric format document it printed)."""
    capsys.readouterr()
    answer = load_handler("outbox_relay").lambda_handler({}, FakeContext(remaining_ms=int(STOP_MS + seconds * 1000)))
    (document,) = [d for d in map(_json, capsys.readouterr().out.splitlines()) if d and "_aws" in d]
    return answer, document


def _json(line: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def values(document: dict[str, Any], metric: str) -> list[float]:
    value = document.get(metric, [])
    return value if isinstance(value, list) else [value]


def test_a_refused_put_events_call_fails_only_its_events_and_the_next_round_publishes_them(
    own_table: DynamoDbRepository, bus_faults: Faults, listen: Callable[..., tuple[Any, str]]
) -> None:
    """Given events waiting in every shard, when the bus refuses the round's first PutEvents call
    (throttled), then the round publishes every other event, counts the refused call's as failed,
    and the next round publishes those: each event reaches the consumer once."""
    shipped(locations=3, products=8)
    events = committed_events(own_table)
    queue = listen()
    refused = bus_faults.inject("PutEvents", "throttled")
    relay = wiring.outbox_relay(settings_of(OutboxRelaySettings))

    first = relay.run_once()
    second = relay.run_once()

    (call,) = refused.calls
    calls = [params for operation, params in bus_faults.calls if operation == "PutEvents"]
    assert len(calls) > 2  # the refused call, the round's other calls, and the next round's
    assert (first.published, first.failed) == (len(events) - len(call["Entries"]), len(call["Entries"]))
    assert (second.published, second.failed) == (len(call["Entries"]), 0)
    seen = Counter(message["detail"]["event_id"] for message in drained(queue))
    assert seen == Counter(e.event_id for e in events)
    assert committed_events(own_table) == []


def test_a_bus_down_for_several_rounds_holds_every_event_and_publishes_each_once_when_it_is_back(
    own_table: DynamoDbRepository,
    bus_faults: Faults,
    listen: Callable[..., tuple[Any, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given committed events, when every PutEvents call fails for three runs of the relay, then
    each run reports its failures and a lag that grows round after round, in the metrics the lag
    alarm reads; when the bus is back, the next run publishes every committed event, and the
    consumer gets each one once."""
    shipped(locations=2, products=6)
    events = committed_events(own_table)
    queue = listen()
    bus_faults.inject("PutEvents", "unavailable", times=10**6)

    outage = [run_relay(1.5, capsys) for _ in range(3)]
    bus_faults.disarm()
    back, back_metrics = run_relay(1.0, capsys)
    after, after_metrics = run_relay(0.3, capsys)

    lags = [lag for _, document in outage for lag in values(document, "OutboxLagSeconds")]
    print(f"\nlag by round while the bus was down: {[round(lag, 2) for lag in lags]}")
    print(f"rounds by run: {[answer['rounds'] for answer, _ in outage]}")
    assert len(lags) == sum(answer["rounds"] for answer, _ in outage)  # a figure every round
    assert lags == sorted(lags)
    assert lags[-1] - lags[0] > 3.0
    for answer, document in outage:
        assert answer["published"] == 0
        assert answer["failed"] >= len(events)
        assert values(document, "OutboxPublishFailures") == [answer["failed"]]
    assert back["published"] == len(events)
    assert values(back_metrics, "OutboxPublishFailures") == [0]
    assert max(values(back_metrics, "OutboxLagSeconds")) >= lags[-1]
    assert (after["published"], max(values(after_metrics, "OutboxLagSeconds"))) == (0, 0.0)
    seen = Counter(message["detail"]["event_id"] for message in drained(queue))
    assert seen == Counter(e.event_id for e in events)  # every committed event, once


def test_the_lag_figures_are_those_the_lag_alarm_reads(
    own_table: DynamoDbRepository, capsys: pytest.CaptureFixture[str]
) -> None:
    """The alarm watches the namespace, metric and dimensions that the relay publishes, with the
    highest figure of each minute, and takes no figure at all as breaching."""
    (alarm,) = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "OutboxLagSeconds"
    ]

    _, document = run_relay(0.2, capsys)

    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == alarm["Namespace"]
    assert "OutboxLagSeconds" in {m["Name"] for m in directive["Metrics"]}
    assert {d["Name"]: document[d["Name"]] for d in alarm["Dimensions"]} == {
        d["Name"]: d["Value"] for d in alarm["Dimensions"]
    }
    assert [d["Name"] for d in alarm["Dimensions"]] in directive["Dimensions"]
    assert (alarm["Statistic"], alarm["TreatMissingData"]) == ("Maximum", "breaching")


def test_a_refusal_too_large_for_the_bus_reaches_the_consumer_in_parts(
    own_table: DynamoDbRepository, listen: Callable[..., tuple[Any, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a store without the products, when an allocation from the bus asks for 100 products
    whose ids JSON escapes to 1.5 KB each, then its Allocation Refused event (over 300 KB) reaches
    the consumer as parts, each within the bus's limit and its schema, with every item, and
    together with every shortage once."""
    location = f"big-{uuid.uuid4().hex[:6]}"
    load(location, {"other": 1})
    products = [f"{n:03d}" + "\U0001f4e6" * 125 for n in range(100)]
    detail = {
        "event_id": f"c-{location}",
        "location_id": location,
        "allocation_id": "al-big",
        "order_id": "o-big",
        "items": [{"product_id": p, "quantity": 2} for p in products],
    }
    message = from_bus("Allocation Created", detail, f"m-{location}")
    answer = load_handler("shipment_events").lambda_handler(
        sqs_event([message], QUEUE_ARN), FakeContext(remaining_ms=60_000)
    )
    assert answer == {"batchItemFailures": []}
    (whole,) = [e for e in committed_events(own_table) if e.detail_type == "Allocation Refused"]
    queue = listen("Allocation Refused", location)

    ran, _ = run_relay(0.5, capsys)

    parts = sorted((m["detail"] for m in drained(queue)), key=lambda d: d["part"])
    assert ran["failed"] == 0
    assert len(json.dumps(whole.detail, separators=(",", ":"))) > 300_000
    assert [(p["part_of"], p["part"], p["parts"]) for p in parts] == [(whole.event_id, n, 2) for n in (1, 2)]
    assert len({p["event_id"] for p in parts}) == 2
    for part in parts:
        assert len(json.dumps(part, separators=(",", ":"))) <= 256 * 1024
        assert part["items"] == detail["items"]
        Draft202012Validator(committed("Allocation Refused")).validate(part)
    assert [s["product_id"] for p in parts for s in p["shortages"]] == products
    print(
        f"\nAllocation Refused of {len(json.dumps(whole.detail, separators=(',', ':')))} bytes in parts of "
        f"{[len(json.dumps(p, separators=(',', ':'))) for p in parts]} bytes"
    )
