"""Shared test helpers: HTTP API events as API Gateway sends them, a Lambda context, handler loading."""

from __future__ import annotations

import importlib.util
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import coverage
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _lambda_like_environment() -> None:
    """Set what Lambda sets before a handler is imported: the template's plain Globals variables
    (POWERTOOLS_*), no X-Ray daemon, and a region. Each function's own variables (the table, the
    bus, the queues) are set by the integration fixtures, which know the local backends' names, or
    from `template_environment` by the tests that import a handler without backends."""

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), _Loader)
    for name, value in template["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, str):
            os.environ.setdefault(name, value)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")


_lambda_like_environment()


class FakeContext:
    function_name = "test-function"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:test-function"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "test"

    def __init__(self, remaining_ms: int = 10_000) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_event(
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    caller: str = "arn:aws:iam::123456789012:user/tester",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event; `body` is sent as is when it is a str."""
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "queryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "authorizer": {"iam": {"userArn": caller, "callerId": "AIDATEST", "accountId": "123456789012"}},
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795770000000,
        },
        "body": text,
        "isBase64Encoded": False,
    }


def template_environment(function: str) -> dict[str, str]:
    """The variables template.yaml gives functions/<function> (its Globals included), resolved as the
    local stack resolves them (resource names, not the backends' endpoints)."""
    from local.template import Template

    specs = Template(ROOT / "template.yaml", region="eu-west-1").functions()
    (spec,) = [spec for spec in specs.values() if spec.code_dir.name == function]
    return dict(spec.environment)


@pytest.fixture
def cold_start() -> Iterator[None]:
    """Settings read and services built again at their next use, as after a cold start; and again
    after the test, which may change the environment."""
    from inventory import wiring

    wiring.forget()
    yield
    wiring.forget()


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py under a name of its own (every handler module is `app`)."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_{function}", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from received messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795770000000",
                    "SenderId": "AIDATEST",
                    "ApproximateFirstReceiveTimestamp": "1795770000000",
                },
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-west-1",
            }
            for message in messages
        ]
    }


def shipment_entry(entry_id: str, timestamp: int, at: Any, quantity: int = 1, handover: bool = False) -> Any:
    """The ledger entry of a shipment (or handover) line of `quantity` units, applied at `at`."""
    from inventory.models import LedgerKind
    from inventory.models.counters import LedgerEntry

    return LedgerEntry(
        entry_id=entry_id,
        kind=LedgerKind.HANDOVER if handover else LedgerKind.SHIPMENT,
        quantity=-quantity,
        stock_location="main",
        logical_timestamp=timestamp,
        applied_at=at,
        reference=f"shipment-{entry_id}",
    )


def record_ledger_entry(repo: Any, location_id: str, product_id: str, entry: Any) -> bool:
    """Seed one ledger entry through a repository's real counters write, as the services write
    them: the entry records the location's epoch, and adds itself to the sums of the import layers
    the location announces that do not include it; False when an entry with its id is there already."""
    from inventory.ledger import folded_sums, layers_for
    from inventory.models.counters import CountersChange

    while True:
        location = repo.get_location(location_id)
        counters = repo.counters_of(location_id, product_id)
        if counters.entry(entry.entry_id, entry.source_hash) is not None:
            return False
        written = entry.model_copy(update={"epoch": location.import_seq}) if location else entry
        into = layers_for(location, entry.logical_timestamp) if location else (0,)
        fold = folded_sums(location, counters.ledger) if location and counters.legacy else None
        if repo.change_counters(location_id, CountersChange(expected=counters, entry=written, into=into, fold=fold)):
            return True


# Lines for the end of the run's report (the generated requests sent, by status), printed by the
# process that writes the terminal: with `make test`'s workers (pytest-xdist) each worker hands its
# lines over when it ends.
REPORT = pytest.StashKey[list[str]]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["report"] = session.config.stash.get(REPORT, [])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    lines = getattr(node, "workeroutput", {}).get("report", [])
    node.config.stash.setdefault(REPORT, []).extend(lines)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in config.stash.get(REPORT, []):
        terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's node id names it whole, and the modules marked `long` come first.

    schemathesis names its test of each operation `test[GET /path]` but gives all of them the
    function's node id; pytest-xdist tells tests apart by node id, and would run one of them only.
    The order matters to `make test`'s processes, which take modules in the order collected: a long
    module taken last would run alone at the end."""
    for item in items:
        original = getattr(item, "originalname", item.name)
        if item.id.params is None and item.name.startswith(f"{original}[") and item.name.endswith("]"):
            item._id = item.id.with_params(item.name.removeprefix(f"{original}[").removesuffix("]"))
    repeated = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
    if repeated:
        raise pytest.UsageError(f"tests that share a node id would run once only: {repeated[:3]}")
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def is_running(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: its children, theirs, and so on."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Coverage is measured on every test but those of the modules marked `long` (the failure-path
    suites at scale, about four fifths of the suite's time), which its tracer slows by about a
    quarter: make test's budget is 15 minutes. Measured on 2026-12-01: 94.5% of the lines are
    covered without them, 97.4% with them; the gate is 85%."""
    paused = coverage.Coverage.current() if item.get_closest_marker("long") else None
    if paused is not None:
        paused.stop()
    try:
        return (yield)
    finally:
        if paused is not None:
            paused.start()
