"""Starts the local stack as `make run` does (`python -m local`) on free ports, once per session."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from jsonschema import Draft202012Validator

from inventory.messages import DetailType
from inventory.messages.schemas import file_name
from tests.conftest import ROOT

START_TIMEOUT_S = 90
ACCESS_LOG = re.compile(r'^http \| \S+ "[A-Z]+ \S+ HTTP/1\.1" \d{3} ')
SCHEMAS = ROOT / "schemas" / "events"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Api:
    url: str

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@dataclass
class RunningStack:
    api: Api
    env: dict[str, str]  # what a client of the local AWS endpoints needs
    table: str
    bus: str
    pid: int  # the stack's process: the handlers' workers are its children
    log: list[str] = field(default_factory=list)  # what the stack printed: its handlers' logs among it

    def queue_url(self, logical_id: str) -> str:
        """The local queue's URL (the local stack names queues local-<logical id>)."""
        return str(self.client("sqs").get_queue_url(QueueName=f"local-{logical_id.lower()}")["QueueUrl"])

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.env[
                f"AWS_ENDPOINT_URL_{service.upper()}" if service == "dynamodb" else "AWS_ENDPOINT_URL"
            ],
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    ports = {"PORT": free_port(), "LOCAL_AWS_PORT": free_port(), "LOCAL_DYNAMODB_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "AWS_DEFAULT_REGION": "eu-west-1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "ready" in line.lower():
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the local stack did not start:\n" + "".join(output[-50:]))
        client_env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['LOCAL_AWS_PORT']}",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{ports['LOCAL_DYNAMODB_PORT']}",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
        api = Api(f"http://127.0.0.1:{ports['PORT']}")
        running = RunningStack(api, client_env, table="", bus="", pid=process.pid, log=output)
        running.table = running.client("dynamodb").list_tables()["TableNames"][0]
        buses = running.client("events").list_event_buses()["EventBuses"]
        running.bus = next(bus["Name"] for bus in buses if bus["Name"] != "default")
        yield running
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed end-to-end test reports the last of what the stack printed, its handlers' errors among it."""
    report = yield
    running = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(running, RunningStack):
        printed = [line for line in running.log if not ACCESS_LOG.match(line)]  # not the tests' polling
        report.sections.append(("local stack, its last 80 lines but HTTP access", "".join(printed[-80:])))
    return report


@pytest.fixture
def bus_queue(stack: RunningStack) -> Iterator[tuple[Any, str]]:
    """A queue subscribed to this service's events on the stack's bus, as the ERP's would be."""
    sqs, events = stack.client("sqs"), stack.client("events")
    name = f"erp-{os.urandom(4).hex()}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=stack.bus, EventPattern='{"source": ["inventory-master"]}')
    events.put_targets(Rule=name, EventBusName=stack.bus, Targets=[{"Id": "q", "Arn": arn}])
    yield sqs, url
    events.remove_targets(Rule=name, EventBusName=stack.bus, Ids=["q"])
    events.delete_rule(Name=name, EventBusName=stack.bus)


def schema_errors(detail_type: str, detail: Any) -> list[str]:
    """What the repository's JSON Schema of `detail_type` finds wrong with `detail` (nothing: it fits)."""
    schema = json.loads((SCHEMAS / file_name(DetailType(detail_type))).read_text())
    return [f"{list(error.path)}: {error.message}" for error in Draft202012Validator(schema).iter_errors(detail)]


def drain(bus_queue: tuple[Any, str], until: Any, seconds: float) -> list[dict[str, Any]]:
    """Receive events until `until(events)` holds or the time is up; each must fit its schema file."""
    sqs, url = bus_queue
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until(events):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            event = json.loads(message["Body"])
            assert schema_errors(event["detail-type"], event["detail"]) == [], event
            events.append(event)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return events
