"""The local stack (`local/`) on its own small template: HTTP API, runtime, triggers, shutdown."""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import boto3
import pytest

from local import runtime
from local.backends import Dynalite
from local.provision import provision
from local.stack import Stack
from local.template import FunctionSpec
from local.triggers import scheduled_event
from tests.conftest import descendants, is_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "local_stack"
TEMPLATE = FIXTURE / "template.yaml"
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=AKIALOCALTEST/20260101/eu-west-1/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0123456789abcdef"
)


@pytest.fixture(scope="module")
def stack():
    with Stack(TEMPLATE, region="eu-west-1", schedule_scale=30) as running:
        yield running


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    base_url: str,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    timeout: float = 30,
) -> Response:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        connection.putrequest(method, target)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Response(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def eventually(check: Callable[[], Any], timeout: float = 15, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(interval)


def items(stack: Stack, pk: str) -> dict[str, dict[str, Any]]:
    table = stack.aws.name("Table")
    response = stack.aws.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )
    return {
        item["sk"]["S"]: {"deliveries": int(item["deliveries"]["N"]), **json.loads(item["attributes"]["S"])}
        for item in response["Items"]
    }


# ------------------------------------------------------------------------------------ HTTP API


def test_a_route_gets_the_payload_2_event_and_the_function_environment(stack):
    response = request(
        stack.api_url,
        "GET",
        "/items/abc%20def?x=1&x=2&empty=",
        headers=[("Cookie", "a=1; b=2"), ("X-Dup", "one"), ("X-Dup", "two"), ("Authorization", SIGV4)],
    )

    assert response.status == 200
    assert response.header("x-route") == ["GET /items/{item_id}"]
    assert response.header("Set-Cookie") == ["first=1", "second=2"]
    assert response.header("apigw-requestid")
    seen = response.json()
    event = seen["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{item_id}"
    assert event["rawPath"] == "/items/abc def"
    assert event["rawQueryString"] == "x=1&x=2&empty="
    assert event["queryStringParameters"] == {"x": "1,2", "empty": ""}
    assert event["pathParameters"] == {"item_id": "abc def"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-dup"] == "one,two"
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["stage"] == "$default"
    assert context["routeKey"] == "GET /items/{item_id}"
    assert context["domainName"] == f"{context['apiId']}.execute-api.eu-west-1.amazonaws.com"
    assert context["domainPrefix"] == context["apiId"]
    assert context["http"]["method"] == "GET"
    assert context["http"]["path"] == "/items/abc def"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == response.header("apigw-requestid")[0]
    assert isinstance(context["timeEpoch"], int)
    assert context["authorizer"]["iam"]["accessKey"] == "AKIALOCALTEST"
    assert context["authorizer"]["iam"]["userArn"] == "arn:aws:iam::123456789012:user/local-AKIALOCALTEST"

    env = seen["env"]
    assert env["GREETING"] == "overridden"  # the function's variable wins over Globals'
    assert env["STAGE"] == "development"
    assert env["TABLE_NAME"] == "local-table"
    assert env["DLQ_URL"] == f"{stack.aws.aws_endpoint}/123456789012/local-work-dlq"
    assert env["BUS_ARN"] == "arn:aws:events:eu-west-1:123456789012:event-bus/local-bus"
    assert env["PROD_ONLY"] is None
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_ENDPOINT_URL"] == stack.aws.aws_endpoint
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == stack.aws.dynamodb_endpoint
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert seen["layer"] == "shared-layer"
    assert seen["cwd"] == str(FIXTURE / "handlers")
    lambda_context = seen["context"]
    assert lambda_context["function_name"] == "local-httpfunction"
    assert lambda_context["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:local-httpfunction"
    assert lambda_context["memory_limit_in_mb"] == "256"
    assert lambda_context["log_group_name"] == "/aws/lambda/local-httpfunction"
    assert 0 < lambda_context["remaining_ms"] <= 5000


def test_greedy_paths_default_route_and_bodies(stack):
    binary = bytes(range(256))
    files = request(stack.api_url, "PUT", "/files/a/b/c.bin", binary, [("Content-Type", "application/octet-stream")])
    echo = request(stack.api_url, "POST", "/echo", b'{"k": "v"}', [("Content-Type", "application/json; charset=utf-8")])
    unknown = request(stack.api_url, "GET", "/nothing/here")
    wrong_method = request(stack.api_url, "DELETE", "/echo")
    unrouted_methods = [request(stack.api_url, method, "/echo") for method in ("TRACE", "PROPFIND")]

    assert files.status == 200
    event = files.json()["event"]
    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c.bin"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == binary
    assert echo.status == 201
    assert echo.json()["event"]["body"] == '{"k": "v"}'
    assert echo.json()["event"]["isBase64Encoded"] is False
    assert "authorizer" not in echo.json()["event"]["requestContext"]  # its route says Authorizer: NONE
    assert unknown.json()["event"]["routeKey"] == "$default"
    assert "pathParameters" not in unknown.json()["event"]
    assert wrong_method.json()["event"]["routeKey"] == "$default"
    assert [r.json()["event"]["routeKey"] for r in unrouted_methods] == ["$default", "$default"]
    assert [r.json()["event"]["requestContext"]["http"]["method"] for r in unrouted_methods] == ["TRACE", "PROPFIND"]


def test_a_plain_result_is_a_json_200(stack):
    response = request(stack.api_url, "GET", "/sleep?seconds=0")

    assert response.status == 200
    assert response.header("Content-Type") == ["application/json"]
    assert response.json()["slept"] == 0


@pytest.mark.parametrize("size", [7 * 1024 * 1024, 11 * 1024 * 1024])
def test_a_body_over_the_payload_limits_is_413(stack, size):
    response = request(stack.api_url, "POST", "/echo", b"x" * size, [("Content-Type", "text/plain")])

    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["details"] == []


def test_concurrent_requests_run_in_parallel_workers(stack):
    request(stack.api_url, "GET", "/sleep?seconds=0")  # at least one warm worker
    results: list[Response] = []
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: results.append(request(stack.api_url, "GET", "/sleep?seconds=1")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert [response.status for response in results] == [200] * 4
    assert len({response.json()["pid"] for response in results}) == 4
    assert elapsed < 2.5, f"4 requests of 1 s took {elapsed:.1f} s"


def test_a_crash_is_502_and_the_function_keeps_serving(stack):
    crashed = request(stack.api_url, "GET", "/crash")
    after = request(stack.api_url, "GET", "/items/1")

    assert crashed.status == 502
    assert crashed.json() == {"error": {"code": "internal_error", "message": "The function failed", "details": []}}
    assert after.status == 200


def test_a_handler_over_its_timeout_is_killed_and_answered_504(stack):
    warm = request(stack.api_url, "GET", "/slow?seconds=0").json()["pid"]
    started = time.monotonic()
    timed_out = request(stack.api_url, "GET", "/slow?seconds=5")
    elapsed = time.monotonic() - started
    after = request(stack.api_url, "GET", "/slow?seconds=0")

    assert timed_out.status == 504
    assert timed_out.json()["error"]["code"] == "timeout"
    assert elapsed < 2.5
    assert not is_running(warm)
    assert after.status == 200
    assert after.json()["pid"] != warm


def test_a_warm_worker_that_died_while_idle_is_replaced_and_the_request_served(stack):
    idle = request(stack.api_url, "GET", "/slow?seconds=0").json()["pid"]  # the next request's worker
    os.kill(idle, signal.SIGKILL)
    eventually(lambda: not is_running(idle))

    after = request(stack.api_url, "GET", "/slow?seconds=0")

    assert after.status == 200
    assert after.json()["pid"] != idle


def test_dynamodb_keeps_serving_when_a_client_goes_away_in_the_middle_of_a_request():
    """dynalite itself stops at such a client (architect/dynalite issue 183): a worker killed at its
    Timeout while it sent a request stopped every function's DynamoDB. The local stack guards it."""
    dynalite = Dynalite()
    dynalite.start()
    try:
        endpoint = urlsplit(dynalite.endpoint)
        for _ in range(3):
            with socket.create_connection((endpoint.hostname, endpoint.port)) as client:
                client.sendall(
                    b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"
                    b'Content-Type: application/x-amz-json-1.0\r\nContent-Length: 1000\r\n\r\n{"Lim'
                )
                time.sleep(0.2)  # the body has begun to arrive when the client goes
        time.sleep(0.5)
        client = boto3.client(
            "dynamodb",
            endpoint_url=dynalite.endpoint,
            region_name="eu-west-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        assert client.list_tables()["TableNames"] == []
    finally:
        dynalite.stop()


def slow_init_pool(tmp_path: Path, init_seconds: float, timeout: int) -> runtime.FunctionPool:
    """A function whose module takes `init_seconds` to import, counting its inits in a file."""
    (tmp_path / "slow_init.py").write_text(
        "import os, time\n"
        "with open(os.environ['INITS_FILE'], 'a') as inits:\n"
        "    inits.write('init\\n')\n"
        f"time.sleep({init_seconds})\n"
        "def handler(event, context):\n"
        "    return {'pid': os.getpid(), 'left_ms': context.get_remaining_time_in_millis()}\n"
    )
    spec = FunctionSpec(
        logical_id="SlowInitFunction",
        name="slow-init",
        arn="arn:aws:lambda:eu-west-1:123456789012:function:slow-init",
        handler="slow_init.handler",
        runtime="python3.11",
        code_dir=tmp_path,
        layer_dirs=(),
        environment={"INITS_FILE": str(tmp_path / "inits")},
        timeout=timeout,
        memory_size=128,
        reserved_concurrency=None,
        log_group="/aws/lambda/slow-init",
        log_format="Text",
        events=(),
    )
    return runtime.FunctionPool(spec, {"INITS_FILE": str(tmp_path / "inits")})


def test_an_init_over_its_limit_runs_again_within_the_function_timeout(tmp_path, monkeypatch):
    """As Lambda does: an init past 10 s is not a failed invocation; the init runs once more, in a new
    environment, with the function's Timeout for the init and the invocation together."""
    monkeypatch.setattr(runtime, "INIT_TIMEOUT", 0.5)
    pool = slow_init_pool(tmp_path, init_seconds=1.0, timeout=4)
    try:
        first = pool.invoke({})
        warm = pool.invoke({})
    finally:
        pool.close()

    assert first.ok, first.error
    assert (tmp_path / "inits").read_text() == "init\n" * 2
    assert first.init_duration_ms is not None
    assert first.init_duration_ms >= 1000
    assert 0 < first.result["left_ms"] < 3000  # the retried init spent the invocation's Timeout
    assert warm.ok
    assert warm.result["pid"] == first.result["pid"]
    assert warm.init_duration_ms is None


def test_an_init_over_the_function_timeout_as_well_is_a_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "INIT_TIMEOUT", 0.5)
    pool = slow_init_pool(tmp_path, init_seconds=3.0, timeout=1)
    try:
        failed = pool.invoke({})
    finally:
        pool.close()

    assert failed.timed_out, failed.error
    assert "Task timed out after 1.00 seconds" in failed.error["errorMessage"]


# ------------------------------------------------------------------------------------ triggers


def test_a_poison_message_ends_in_the_dead_letter_queue_and_its_batch_mates_are_deleted(stack):
    sqs = stack.aws.client("sqs")
    work_queue, dead_letters = stack.aws.queue_url("WorkQueue"), stack.aws.queue_url("WorkDeadLetterQueue")
    entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(["ok-1", "poison", "ok-2"])]
    sqs.send_message_batch(QueueUrl=work_queue, Entries=entries)

    def dead_lettered() -> Any:
        return sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=1).get("Messages", [])

    dead = eventually(dead_lettered, timeout=20, interval=0)
    assert [message["Body"] for message in dead] == ["poison"]
    processed = items(stack, "work")
    assert {key: item["deliveries"] for key, item in processed.items()} == {"ok-1": 1, "ok-2": 1}
    record = processed["ok-1"]["record"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == stack.aws.arn("WorkQueue")
    assert record["awsRegion"] == "eu-west-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert set(record) >= {"messageId", "receiptHandle", "body", "messageAttributes", "md5OfBody"}
    attributes = sqs.get_queue_attributes(QueueUrl=work_queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_an_event_on_the_bus_reaches_handlers_through_rules(stack):
    events = stack.aws.client("events")
    bus = stack.aws.ref("Bus")
    entries = [
        {"EventBusName": bus, "Source": "fixture.orders", "DetailType": "Order", "Detail": json.dumps(detail)}
        for detail in ({"kind": "created", "id": "o-1"}, {"kind": "cancelled", "id": "o-2"})
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0

    # AWS::Events::Rule -> OrdersQueue -> the SQS event of BatchFunction (the rule matches kind=created)
    orders = eventually(lambda: items(stack, "order"))
    # the SAM EventBridgeRule event of RuleFunction (its pattern matches every order)
    ruled = eventually(lambda: (found := items(stack, "rule")) and len(found) == 2 and found)

    assert list(orders) == ["o-1"]
    assert json.loads(orders["o-1"]["record"]["body"])["detail-type"] == "Order"
    assert ruled["o-2"]["event"]["source"] == "fixture.orders"
    assert ruled["o-2"]["event"]["detail"] == {"kind": "cancelled", "id": "o-2"}


def test_an_object_created_in_the_bucket_reaches_the_s3_event(stack):
    stack.aws.client("s3").put_object(Bucket=stack.aws.ref("UploadsBucket"), Key="uploads/a.csv", Body=b"a,b\n")

    uploaded = eventually(lambda: items(stack, "s3"))

    [(key, record)] = uploaded.items()
    assert unquote_plus(key) == "uploads/a.csv"  # keys in S3 events are URL-encoded
    assert record["event"]["eventName"] == "ObjectCreated:Put"
    assert record["event"]["s3"]["bucket"]["name"] == "local-uploadsbucket"


def test_schedules_fire_with_a_scheduled_event(stack):
    def sources() -> dict[str, dict]:
        return {tick["event"]["source"]: tick["event"] for tick in items(stack, "tick").values()}

    events = eventually(lambda: len(found := sources()) == 2 and found, timeout=10)  # ScheduleV2 and Schedule

    for source, event in events.items():
        assert event["version"] == "0"
        assert event["detail-type"] == "Scheduled Event"
        assert event["account"] == "123456789012"
        assert event["region"] == "eu-west-1"
        assert event["detail"] == {}
        assert event["resources"][0].startswith(
            "arn:aws:scheduler:eu-west-1:123456789012:schedule/" if source == "aws.scheduler" else "arn:aws:events:"
        )
    assert set(events) == {"aws.scheduler", "aws.events"}


# ------------------------------------------------------------------------------------ LocalAws


def test_handlers_run_in_process_with_function_env(stack, monkeypatch):
    for name, value in stack.aws.function_env("TickFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(FIXTURE / "layer"))
    spec = importlib.util.spec_from_file_location("fixture_app_in_process", FIXTURE / "handlers" / "fixture_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1000

    event = scheduled_event("arn:aws:scheduler:eu-west-1:123456789012:schedule/default/in-process", "eu-west-1")
    module.record(event, Context())

    assert items(stack, "tick")[event["id"]]["deliveries"] == 1


def test_provisioning_again_changes_nothing_and_conditions_hold(stack):
    notes = provision(stack.aws.template, stack.aws.client)

    assert notes == []
    queues = stack.aws.client("sqs").list_queues()["QueueUrls"]
    assert stack.aws.queue_url("WorkQueue") in queues
    assert not [url for url in queues if "prodonlyqueue" in url]  # its Condition is false
    table = stack.aws.client("dynamodb").describe_table(TableName="local-table")["Table"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["gsi1"]


# ------------------------------------------------------------------------------------ python -m local


def test_python_m_local_starts_serves_and_stops_leaving_no_process(tmp_path):
    output = tmp_path / "stack.log"
    env = {
        **os.environ,
        "PORT": "0",
        "LOCAL_AWS_PORT": "0",
        "LOCAL_DYNAMODB_PORT": "0",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local", str(TEMPLATE)],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = eventually(lambda: "ready at" in output.read_text() and output.read_text(), timeout=30)
        api_url = ready.split("ready at ", 1)[1].split()[0]
        assert request(api_url, "GET", "/items/1").status == 200
        assert "local-table" in ready
        assert "local-work-dlq" in ready
        children = descendants(process.pid)
        assert len(children) >= 3  # dynalite (under its watchdog shell) and a worker
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)

    assert exit_code == 0
    assert "Local stack stopped" in output.read_text()
    assert [pid for pid in children if is_running(pid)] == []
