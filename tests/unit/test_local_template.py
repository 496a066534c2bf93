"""The local stack's pure parts: template loading, intrinsics, Globals, routing, events, responses."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from local.http_api import Route, Router, http_event, http_response, routes_from
from local.runtime import Invocation
from local.template import Template, TemplateError, merge_globals
from local.triggers import failed_message_ids, rate_seconds, scheduled_event, sqs_record

FIXTURE_TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "local_stack" / "template.yaml"
ENDPOINT = "http://127.0.0.1:4566"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def fixture_template() -> Template:
    return Template(FIXTURE_TEMPLATE, region="eu-west-1", aws_endpoint=ENDPOINT)


# ------------------------------------------------------------------------------------ intrinsics


def test_refs_and_attributes_are_what_cloudformation_gives(fixture_template):
    t = fixture_template

    assert t.ref("Table") == "local-table"
    assert t.ref("WorkQueue") == f"{ENDPOINT}/123456789012/local-workqueue"
    assert t.ref("WorkDeadLetterQueue") == f"{ENDPOINT}/123456789012/local-work-dlq"  # its QueueName
    assert t.get_att("WorkQueue", "Arn") == "arn:aws:sqs:eu-west-1:123456789012:local-workqueue"
    assert t.get_att("WorkQueue", "QueueName") == "local-workqueue"
    assert t.ref("Bus") == "local-bus"
    assert t.get_att("Bus", "Arn") == "arn:aws:events:eu-west-1:123456789012:event-bus/local-bus"
    assert t.ref("UploadsBucket") == "local-uploadsbucket"
    assert t.get_att("UploadsBucket", "Arn") == "arn:aws:s3:::local-uploadsbucket"
    assert t.get_att("Table", "Arn") == "arn:aws:dynamodb:eu-west-1:123456789012:table/local-table"
    assert t.ref("HttpFunction") == "local-httpfunction"
    assert t.ref("SharedLayer") == "arn:aws:lambda:eu-west-1:123456789012:layer:local-sharedlayer:1"
    assert t.ref("AlarmTopic") == "arn:aws:sns:eu-west-1:123456789012:local-alarmtopic"
    assert t.ref("OrdersRule") == "local-bus|local-ordersrule"
    assert t.ref("AWS::AccountId") == "123456789012"
    assert t.ref("RetryCount") == "2"


def test_a_queue_url_without_endpoint_is_the_aws_one():
    t = Template(FIXTURE_TEMPLATE, region="eu-west-1")

    assert t.ref("OrdersQueue") == "https://sqs.eu-west-1.amazonaws.com/123456789012/local-ordersqueue"


def test_region_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")

    assert Template(FIXTURE_TEMPLATE).ref("AWS::Region") == "ap-southeast-2"


def test_short_and_long_forms_resolve_alike(tmp_path):
    t = Template(
        write(
            tmp_path,
            """
Parameters:
  Names: { Type: CommaDelimitedList, Default: "a,b,c" }
  Flag: { Type: String, Default: "on" }
Conditions:
  On: !Equals [!Ref Flag, "on"]
  Both: { "Fn::And": [{ Condition: On }, !Not [!Equals [!Ref Flag, "off"]]] }
Mappings:
  Sizes: { small: { memory: 128 } }
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: { FifoQueue: true }
  Thing:
    Type: AWS::SQS::Queue
    Properties:
      Short: !Sub "${AWS::StackName}-${Queue.QueueName}-${!Literal}-${AWS::Partition}.${AWS::URLSuffix}"
      Long: { "Fn::Sub": ["${x}-${Flag}", { x: { "Fn::Select": [1, { "Fn::Split": [",", "p,q"] }] } }] }
      Joined: !Join ["/", !Ref Names]
      Picked: !Select [2, !Ref Names]
      Arn: { "Fn::GetAtt": ["Queue", "Arn"] }
      ArnText: { "Fn::GetAtt": "Queue.Arn" }
      Mapped: !FindInMap [Sizes, small, memory]
      Chosen: !If [Both, yes-branch, no-branch]
      Gone: !If [Both, !Ref AWS::NoValue, kept]
      List: [one, !If [On, !Ref "AWS::NoValue", two], three]
      Encoded: !Base64 hi
      Date: 2010-09-09
""",
        ),
        region="us-west-2",
    )

    resolved = t.properties("Thing")

    assert resolved["Short"] == "local-local-queue.fifo-${Literal}-aws.amazonaws.com"
    assert resolved["Long"] == "q-on"
    assert resolved["Joined"] == "a/b/c"
    assert resolved["Picked"] == "c"
    assert resolved["Arn"] == resolved["ArnText"] == "arn:aws:sqs:us-west-2:123456789012:local-queue.fifo"
    assert resolved["Mapped"] == 128
    assert resolved["Chosen"] == "yes-branch"
    assert "Gone" not in resolved
    assert resolved["List"] == ["one", "three"]
    assert resolved["Encoded"] == "aGk="
    assert resolved["Date"] == "2010-09-09"


def test_parameters_can_be_overridden_and_conditions_drop_resources(tmp_path):
    t = Template(FIXTURE_TEMPLATE, parameters={"Stage": "prod"})

    assert "ProdOnlyQueue" in t.resources
    assert t.functions()["HttpFunction"].environment["PROD_ONLY"] == "yes"
    assert t.functions()["HttpFunction"].environment["STAGE"] == "production"
    assert "ProdOnlyQueue" not in Template(FIXTURE_TEMPLATE).resources


def test_what_cannot_be_resolved_is_a_template_error(tmp_path):
    t = Template(
        write(
            tmp_path,
            """
Parameters:
  Required: { Type: String }
Resources:
  Queue: { Type: AWS::SQS::Queue }
""",
        )
    )

    with pytest.raises(TemplateError, match="Required"):
        t.ref("Required")
    with pytest.raises(TemplateError, match="Missing"):
        t.ref("Missing")
    with pytest.raises(TemplateError, match="Nope"):
        t.get_att("Queue", "Nope")
    with pytest.raises(TemplateError, match="ImportValue"):
        t.resolve({"Fn::ImportValue": "x"})


# ------------------------------------------------------------------------------------ Globals


def test_globals_merge_as_sam_merges_them():
    merged = merge_globals(
        {"Timeout": 10, "Layers": ["g"], "Environment": {"Variables": {"A": "1", "B": "1"}}, "Tags": {"Ref": "x"}},
        {"Timeout": 60, "Layers": ["f"], "Environment": {"Variables": {"B": "2", "C": "2"}}, "Tags": {"k": "v"}},
    )

    assert merged == {
        "Timeout": 60,
        "Layers": ["g", "f"],
        "Environment": {"Variables": {"A": "1", "B": "2", "C": "2"}},
        "Tags": {"k": "v"},  # an intrinsic is a value, not a map to merge
    }


def test_functions_get_globals_layers_and_environment(fixture_template):
    functions = fixture_template.functions()
    http, slow, rule = functions["HttpFunction"], functions["SlowFunction"], functions["RuleFunction"]
    fixture = FIXTURE_TEMPLATE.parent

    assert http.handler == "fixture_app.http"
    assert http.code_dir == fixture / "handlers"
    assert http.layer_dirs == (fixture / "layer",)
    assert http.timeout == 5
    assert http.memory_size == 256
    assert http.environment["GREETING"] == "overridden"
    assert http.environment["TABLE_NAME"] == "local-table"
    assert http.environment["DLQ_URL"] == f"{ENDPOINT}/123456789012/local-work-dlq"
    assert "PROD_ONLY" not in http.environment
    assert slow.timeout == 1
    assert slow.environment["GREETING"] == "hello from eu-west-1"
    assert functions["TickFunction"].reserved_concurrency == 1
    assert rule.layer_dirs == (fixture / "layer",)  # the other layer is not in the template
    assert any("not-in-this-template" in warning for warning in fixture_template.warnings)


# ------------------------------------------------------------------------------------ routing


def test_routes_come_from_the_functions_http_api_events(fixture_template):
    routes = {route.key: route for route in routes_from(fixture_template, fixture_template.functions())}

    assert set(routes) == {
        "GET /items/{item_id}",
        "ANY /files/{proxy+}",
        "POST /echo",
        "GET /sleep",
        "GET /crash",
        "$default",
        "GET /slow",
    }
    assert routes["GET /slow"].function == "SlowFunction"
    assert routes["GET /items/{item_id}"].api_id == fixture_template.ref("ServerlessHttpApi")
    assert routes["GET /items/{item_id}"].iam is True  # Globals.HttpApi's DefaultAuthorizer
    assert routes["POST /echo"].iam is False  # Auth: { Authorizer: NONE }


ROUTES = [
    Route("GET", "/items/{item_id}", "Items", "api"),
    Route("GET", "/items/special", "Special", "api"),
    Route("ANY", "/items/{item_id}", "AnyItem", "api"),
    Route("ANY", "/files/{proxy+}", "Files", "api"),
    Route("GET", "/", "Root", "api"),
]


@pytest.mark.parametrize(
    ("method", "path", "function", "parameters"),
    [
        ("GET", "/items/42", "Items", {"item_id": "42"}),
        ("GET", "/items/special", "Special", {}),
        ("DELETE", "/items/42", "AnyItem", {"item_id": "42"}),
        ("POST", "/files/a/b/c.txt", "Files", {"proxy": "a/b/c.txt"}),
        ("PUT", "/files/line\n/feed", "Files", {"proxy": "line\n/feed"}),  # a decoded %0A, greedy too
        ("GET", "/", "Root", {}),
    ],
)
def test_the_most_specific_route_wins(method, path, function, parameters):
    matched = Router(ROUTES).match(method, path)
    assert matched is not None
    route, found = matched

    assert route.function == function
    assert found == parameters


def test_default_route_takes_the_rest_and_without_it_nothing_matches():
    with_default = Router([*ROUTES, Route("ANY", "$default", "Fallback", "api")])

    assert with_default.match("GET", "/items/42/extra") == (with_default.default, {})
    assert with_default.match("GET", "/files") == (with_default.default, {})
    assert with_default.default is not None
    assert with_default.default.key == "$default"
    assert Router(ROUTES).match("GET", "/nothing") is None
    assert Router(ROUTES).match("POST", "/") is None


# ------------------------------------------------------------------------------------ events


def test_the_payload_2_event_has_api_gateways_shape():
    route = Route("POST", "/orders/{order_id}", "Orders", "abc123defg")
    event = http_event(
        route,
        {"order_id": "o 1"},
        method="POST",
        target="/orders/o%201?tag=a&tag=b&flag",
        headers=[
            ("Content-Type", "application/json"),
            ("Cookie", "s=1; t=2"),
            ("X-Many", "1"),
            ("x-many", "2"),
            ("User-Agent", "tests"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/eu-west-1/execute-api/aws4_request"),
        ],
        body=b'{"a": 1}',
        source_ip="127.0.0.1",
        region="eu-west-1",
        request_id="req-1",
        now=datetime(2026, 3, 12, 19, 3, 58, 390000, tzinfo=UTC),
    )

    assert event == {
        "version": "2.0",
        "routeKey": "POST /orders/{order_id}",
        "rawPath": "/orders/o 1",
        "rawQueryString": "tag=a&tag=b&flag",
        "cookies": ["s=1", "t=2"],
        "headers": {
            "content-type": "application/json",
            "x-many": "1,2",
            "user-agent": "tests",
            "authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/eu-west-1/execute-api/aws4_request",
        },
        "queryStringParameters": {"tag": "a,b", "flag": ""},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "authorizer": {
                "iam": {
                    "accessKey": "AKIAEXAMPLE",
                    "accountId": "123456789012",
                    "callerId": "local-AKIAEXAMPLE",
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": "arn:aws:iam::123456789012:user/local-AKIAEXAMPLE",
                    "userId": "local-AKIAEXAMPLE",
                }
            },
            "domainName": "abc123defg.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123defg",
            "http": {
                "method": "POST",
                "path": "/orders/o 1",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "tests",
            },
            "requestId": "req-1",
            "routeKey": "POST /orders/{order_id}",
            "stage": "$default",
            "time": "12/Mar/2026:19:03:58 +0000",
            "timeEpoch": 1773342238390,
        },
        "body": '{"a": 1}',
        "isBase64Encoded": False,
        "pathParameters": {"order_id": "o 1"},
    }


@pytest.mark.parametrize(
    ("content_type", "encoded"),
    [
        ("text/csv", False),
        ("application/json", False),
        ("application/xml", False),
        ("application/x-www-form-urlencoded", True),
        ("application/octet-stream", True),
        (None, True),
    ],
)
def test_bodies_are_base64_unless_text(content_type, encoded):
    headers = [("Content-Type", content_type)] if content_type else []
    event = http_event(
        Route("ANY", "$default", "F", "api"),
        {},
        method="PUT",
        target="/x",
        headers=headers,
        body=b"a=1",
        source_ip="::1",
        region="us-east-1",
    )

    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"].encode()) == b"a=1"
    assert event["routeKey"] == "$default"
    assert event["requestContext"]["authorizer"]["iam"]["userArn"].endswith("user/local-anonymous")


def test_a_route_without_iam_has_no_authorizer():
    route = Route("GET", "/open", "F", "api", iam=False)
    event = http_event(
        route, {}, method="GET", target="/open", headers=[], body=b"", source_ip="::1", region="us-east-1"
    )

    assert "authorizer" not in event["requestContext"]
    assert event["requestContext"]["apiId"] == "api"


# ------------------------------------------------------------------------------------ responses


def test_a_structured_result_maps_to_the_response():
    status, headers, body = http_response(
        Invocation(
            "r",
            result={
                "statusCode": 202,
                "headers": {"content-type": "text/plain", "x-n": 1},
                "multiValueHeaders": {"x-m": ["a", "b"]},
                "cookies": ["c=1"],
                "body": base64.b64encode(b"\x00\x01").decode(),
                "isBase64Encoded": True,
            },
        )
    )

    assert status == 202
    assert headers == [("content-type", "text/plain"), ("x-n", "1"), ("x-m", "a"), ("x-m", "b"), ("Set-Cookie", "c=1")]
    assert body == b"\x00\x01"


@pytest.mark.parametrize(
    ("result", "body"),
    [({"message": "hi"}, b'{"message": "hi"}'), ("Hello from Lambda!", b"Hello from Lambda!"), ([1], b"[1]")],
)
def test_a_plain_result_is_json_with_200(result, body):
    assert http_response(Invocation("r", result=result)) == (200, [("Content-Type", "application/json")], body)


@pytest.mark.parametrize(
    ("error_type", "status", "code"),
    [
        ("Sandbox.Timedout", 504, "timeout"),
        ("RuntimeError", 502, "internal_error"),
        ("Runtime.ExitError", 502, "internal_error"),
        ("RequestTooLargeException", 413, "payload_too_large"),
    ],
)
def test_function_errors_become_gateway_errors(error_type, status, code):
    answer, _, body = http_response(Invocation("r", error={"errorType": error_type, "errorMessage": "x"}))

    assert answer == status
    assert json.loads(body)["error"]["code"] == code


def test_a_malformed_response_is_502():
    assert http_response(Invocation("r", result={"statusCode": "abc"}))[0] == 502
    assert http_response(Invocation("r", result={"statusCode": 99}))[0] == 502


# ------------------------------------------------------------------------------------ triggers


def test_the_sqs_record_is_lambdas():
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "MD5OfMessageAttributes": "abc",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "MessageAttributes": {
            "s": {"StringValue": "v", "DataType": "String"},
            "b": {"BinaryValue": b"\x01", "DataType": "Binary"},
        },
    }

    record = sqs_record(message, "arn:aws:sqs:eu-west-1:123456789012:q", "eu-west-1")

    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "messageAttributes": {
            "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {"binaryValue": "AQ==", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "md5OfMessageAttributes": "abc",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:q",
        "awsRegion": "eu-west-1",
    }


@pytest.mark.parametrize(
    ("invocation", "report", "failed"),
    [
        (Invocation("r", result=None), False, set()),
        (Invocation("r", error={"errorType": "E"}), True, {"a", "b"}),
        (Invocation("r", result={"batchItemFailures": [{"itemIdentifier": "b"}]}), True, {"b"}),
        (Invocation("r", result={"batchItemFailures": [{"itemIdentifier": "b"}]}), False, set()),
        (Invocation("r", result={"batchItemFailures": []}), True, set()),
        (Invocation("r", result={"batchItemFailures": [{"itemIdentifier": "zzz"}]}), True, {"a", "b"}),
        (Invocation("r", result={"batchItemFailures": [{"itemIdentifier": ""}]}), True, {"a", "b"}),
    ],
)
def test_which_messages_stay_after_a_batch(invocation, report, failed):
    assert failed_message_ids(invocation, ["a", "b"], report) == failed


def test_rates_and_scheduled_events():
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(2 hours)") == 7200
    assert rate_seconds("cron(0 * * * ? *)") is None
    event = scheduled_event("arn:aws:events:eu-west-1:123456789012:rule/r", "eu-west-1")
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/r"]
