"""Dead letters on the running local stack, handled as an operator would: a shipment for a location
that does not exist yet is dead-lettered with its reason, `dlq list` shows it, the location is
created (the fix), `dlq redrive` sends it back, and the shipment takes effect once however often
it arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import RunningStack
from tests.e2e.test_shipment_events_e2e import eventually, load, put

pytestmark = [pytest.mark.e2e, pytest.mark.long]

LOCATION = "e2e-dlq"


def dlq(stack: RunningStack, *argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m inventory.ops dlq ...`, with the environment `make run` prints."""
    env = {**os.environ, **stack.env, "PYTHONPATH": str(ROOT / "layers" / "domain")}
    return subprocess.run(
        [sys.executable, "-m", "inventory.ops", "dlq", *argv, "--local"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(stack: RunningStack, event_id: str) -> list[dict[str, Any]]:
    done = dlq(stack, "list", "--queue", "fulfillment", "--json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return [record for record in records if record["summary"].get("event_id") == event_id]


def soh(stack: RunningStack, product: str) -> int:
    status, body = stack.api.call("GET", f"/locations/{LOCATION}/stock/{product}")
    assert status == 200, body
    return int(body["stock_on_hand"])


def drained(stack: RunningStack, logical_id: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    sqs = stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_url(logical_id), AttributeNames=names)["Attributes"]
    return all(attributes[name] == "0" for name in names)


def test_a_shipment_dead_lettered_for_a_missing_location_is_redriven_after_the_fix_and_applied_once(
    stack: RunningStack,
) -> None:
    shipment = {
        "event_id": "dlq-1",
        "location_id": LOCATION,
        "shipment_id": "shipment-dlq-1",
        "logical_timestamp": 5,
        "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "items": [{"product_id": "z", "quantity": 2}],
    }
    # Given a shipment, sent twice by its producer, for a location that does not exist yet
    put(stack, shipment)
    put(stack, shipment)

    # When the operator lists the fulfilment dead letters, both copies are there with their reason
    found: list[dict[str, Any]] = []

    def both_listed() -> bool:
        found[:] = listed(stack, "dlq-1")
        return len(found) == 2

    eventually(both_listed, seconds=60)
    assert {record["reason"]["code"] for record in found} == {"unknown_location"}
    assert {record["reason"]["message"] for record in found} == {f"location {LOCATION!r} does not exist"}
    text = dlq(stack, "list", "--queue", "fulfillment", "--code", "unknown_location").stdout
    line = next(line for line in text.splitlines() if found[0]["message_id"] in line)
    assert f"unknown_location  location {LOCATION!r} does not exist  | Fulfillment Items Shipped event_id=dlq-1" in line
    assert len(listed(stack, "dlq-1")) == 2  # listing consumed nothing

    # And the location is created with 9 units (the fix)
    load(stack, LOCATION, "z", 9)
    assert soh(stack, "z") == 9

    # And a redrive that stopped between its send and its delete already sent one copy back
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.queue_url("FulfillmentQueue"), MessageBody=found[0]["body"])
    eventually(lambda: soh(stack, "z") == 7)

    ids = [arg for record in found for arg in ("--message-id", record["message_id"])]
    trial = dlq(stack, "redrive", "--queue", "fulfillment", *ids, "--dry-run")
    assert trial.returncode == 0, trial.stdout + trial.stderr
    assert trial.stdout.count("would redrive  ") == 2
    assert len(listed(stack, "dlq-1")) == 2  # a dry run changes nothing

    # When the operator redrives both records
    done = dlq(stack, "redrive", "--queue", "fulfillment", *ids)

    # Then both are sent back and deleted, and the shipment took effect once in all
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("redriven  ") == 2
    assert "# fulfillment: redriven 2 to " in done.stdout
    eventually(lambda: drained(stack, "FulfillmentQueue"))
    time.sleep(2)
    assert soh(stack, "z") == 7
    assert listed(stack, "dlq-1") == []  # applied, not dead-lettered again

    # And redriving them again finds nothing and changes nothing
    again = dlq(stack, "redrive", "--queue", "fulfillment", *ids)
    assert again.returncode == 1
    assert again.stdout.count("not found  ") == 2
    assert soh(stack, "z") == 7
