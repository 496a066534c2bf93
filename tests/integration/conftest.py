"""Integration fixtures: dynalite and moto on free ports, resources created from template.yaml,
and the handlers' environment pointing at them (the same backends the local stack runs)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from inventory import wiring
from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.settings import TableSettings, settings_of
from local.provision import create_table
from local.stack import LocalAws
from tests.conftest import ROOT
from tests.faults import Faults, faults_on
from tests.unit.fakes import MemoryRepository

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    with LocalAws(ROOT / "template.yaml", dynamodb_port=0, aws_port=0) as aws:
        yield aws


@pytest.fixture(scope="session", autouse=True)
def handler_environment(local_aws: LocalAws) -> Iterator[dict[str, str]]:
    """Every function's environment from the template, together: the handlers here run in this process."""
    saved = dict(os.environ)
    env: dict[str, str] = {}
    for function in local_aws.functions:  # their variables never disagree: one process can host them all
        env |= local_aws.function_env(function)
    env.pop("PYTHONPATH", None)
    os.environ.update(env)
    os.environ["RELAY_POLL_INTERVAL_MS"] = "50"
    # The tests deliver a fulfilment batch at a time: an import may settle its sums at once.
    os.environ["IMPORT_SETTLE_SECONDS"] = "0"
    wiring.forget()  # settings and services come from this environment
    yield env
    os.environ.clear()
    os.environ.update(saved)
    wiring.forget()


def shared_repository() -> DynamoDbRepository:
    """The repository, and its DynamoDB client, that every handler of this process shares."""
    return wiring.repository(settings_of(TableSettings).table_name)


@pytest.fixture
def repo(handler_environment: dict[str, str]) -> DynamoDbRepository:
    return DynamoDbRepository(handler_environment["TABLE_NAME"])


@pytest.fixture(scope="session")
def dynamodb_client(handler_environment: dict[str, str]) -> DynamoDBClient:
    """The adapter's own DynamoDB client, shared by the tests' repositories (each new client costs
    about a third of a second)."""
    return DynamoDbRepository(handler_environment["TABLE_NAME"]).client


@pytest.fixture
def fresh_table(local_aws: LocalAws, dynamodb_client: DynamoDBClient) -> Iterator[str]:
    """An empty table of its own, created from template.yaml's InventoryTable as the session's is: for
    tests that read what a whole table holds (every location, every item waiting in the outbox)."""
    name = f"fresh-{uuid.uuid4().hex[:12]}"
    create_table(dynamodb_client, local_aws.template, "InventoryTable", name)
    yield name
    dynamodb_client.delete_table(TableName=name)


@pytest.fixture
def own_table(fresh_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDbRepository]:
    """Every handler of this process on a table of this test's own, from here to its end."""
    monkeypatch.setenv("TABLE_NAME", fresh_table)
    wiring.forget()
    yield DynamoDbRepository(fresh_table)
    wiring.forget()


@pytest.fixture(params=["memory", "dynamodb"])
def repository(request: pytest.FixtureRequest) -> MemoryRepository | DynamoDbRepository:
    """Every port of storage, empty, on each backend in turn: the in-memory repository of the unit
    tests, and the DynamoDB adapter on a fresh table of dynalite."""
    if request.param == "memory":
        return MemoryRepository()
    return DynamoDbRepository(request.getfixturevalue("fresh_table"), request.getfixturevalue("dynamodb_client"))


@pytest.fixture
def listen(handler_environment: dict[str, str]) -> Iterator[Callable[..., tuple[Any, str]]]:
    """Queues subscribed, as a consumer's would be, to this service's events on the bus: all of them,
    or those of one detail type at one location (other tests may have left thousands of events
    waiting in the outbox, which the relay publishes first)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    bus, made = handler_environment["EVENT_BUS_NAME"], []

    def subscribe(detail_type: str | None = None, location_id: str | None = None) -> tuple[Any, str]:
        name = f"consumer-{os.urandom(4).hex()}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern: dict[str, Any] = {"source": ["inventory-master"]}
        if detail_type:
            pattern["detail-type"] = [detail_type]
        if location_id:
            pattern["detail"] = {"location_id": [location_id]}
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        made.append((name, url))
        return sqs, url

    yield subscribe
    for name, url in made:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
        events.delete_rule(Name=name, EventBusName=bus)
        sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def bus_queue(listen: Callable[..., tuple[Any, str]]) -> tuple[Any, str]:
    """A queue subscribed to everything this service publishes on the bus."""
    return listen()


@pytest.fixture
def faults(handler_environment: dict[str, str]) -> Iterator[Faults]:
    """Faults injected at the DynamoDB client every handler of this process shares (tests/faults.py)."""
    with faults_on(shared_repository().client) as armed:
        yield armed


@pytest.fixture
def bus_faults(own_table: DynamoDbRepository) -> Iterator[Faults]:
    """Faults injected at the EventBridge client of the relay that the handler runs (on a table of
    the test's own: the session's holds other tests' backlog)."""
    from inventory.adapters.eventbridge import EventBridgePublisher
    from inventory.settings.outbox_relay import OutboxRelaySettings

    publisher = wiring.outbox_relay(settings_of(OutboxRelaySettings))._publisher
    assert isinstance(publisher, EventBridgePublisher)
    with faults_on(publisher.client) as armed:
        yield armed
