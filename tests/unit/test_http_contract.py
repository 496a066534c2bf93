"""The HTTP layer's shared contract: error bodies, statuses, field paths, the body limit."""

from __future__ import annotations

import base64
import json
import logging
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from pydantic import BaseModel, ConfigDict

from inventory import errors
from inventory.api.http import CALLER_LOG_KEY, MAX_BODY_BYTES, field_path, make_resolver, status_of
from inventory.observability import logger
from tests.conftest import FakeContext, http_event, load_handler, template_environment


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidInput("x"), 422),
        (errors.NotFound("x"), 404),
        (errors.PayloadTooLarge("x"), 413),
        (errors.LocationIsDc("x"), 409),
        (errors.SwitchIrreversible("x"), 409),
        (errors.NotReady("x"), 409),
        (errors.TemporarilyUnavailable("x"), 503),
        (errors.InventoryError("x"), 500),
    ],
)
def test_each_error_class_has_its_status(error: errors.InventoryError, status: int) -> None:
    assert status_of(error) == status


def test_field_paths_read_like_the_contract() -> None:
    assert field_path(("body", "items", 3, "quantity")) == "body.items[3].quantity"
    assert field_path(("path", "location_id")) == "path.location_id"


def test_a_route_that_does_not_exist_answers_the_contract_404() -> None:
    app = make_resolver()

    response = app.resolve(http_event("GET", "/nowhere"), FakeContext())

    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "not_found"


def test_a_body_over_5_mb_is_refused_before_any_route_runs() -> None:
    app = make_resolver()
    calls = []

    @app.post("/things")
    def post_things() -> dict[str, str]:
        calls.append(1)
        return {}

    response = app.resolve(http_event("POST", "/things", body="x" * (MAX_BODY_BYTES + 1)), FakeContext())

    assert response["statusCode"] == 413
    assert json.loads(response["body"])["error"]["code"] == "payload_too_large"
    assert calls == []


def test_an_unexpected_failure_is_a_500_without_internals() -> None:
    app = make_resolver()

    @app.get("/boom")
    def boom() -> dict[str, str]:
        raise RuntimeError("secret internals")

    response = app.resolve(http_event("GET", "/boom"), FakeContext())

    assert response["statusCode"] == 500
    body = json.loads(response["body"])
    assert body["error"]["code"] == "internal_error"
    assert "secret" not in response["body"]


@pytest.mark.parametrize(
    ("function", "method", "path"),
    [
        ("locations", "PUT", "/locations/s1"),
        ("master_switch", "PUT", "/locations/s1/inventory-master"),
        ("stock_imports", "POST", "/locations/s1/stock-imports"),
        ("allocations", "POST", "/locations/s1/allocations"),
    ],
)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (base64.b64encode(b'{"type": "store", "name": "\xff\xfe"}').decode(), "invalid_utf8"),
        ("not base64 at all!", "invalid_base64"),
    ],
)
def test_a_body_that_is_not_utf8_text_is_a_422_on_every_route_that_takes_one(
    function: str, method: str, path: str, body: str, code: str, cold_start: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API Gateway hands over a body that is not valid UTF-8 base64-encoded; it used to crash the
    body decoding with a 500 before validation ran."""
    for name, value in template_environment(function).items():  # what the handler reads at its cold start
        monkeypatch.setenv(name, value)
    event = http_event(method, path) | {"body": body, "isBase64Encoded": True}

    response = load_handler(function).lambda_handler(event, FakeContext())

    assert response["statusCode"] == 422
    error = json.loads(response["body"])["error"]
    assert (error["code"], [(d["field"], d["code"]) for d in error["details"]]) == (
        "validation_error",
        [("body", code)],
    )


class _Lines(logging.Handler):
    """The log lines the functions write, as JSON objects."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_every_log_line_of_a_request_names_its_request_id_and_caller_as_the_access_log_does() -> None:
    app = make_resolver()

    @app.get("/things")
    def get_things() -> dict[str, str]:
        logger.info("listing things")
        return {}

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    lines = _Lines()
    logging.getLogger(logger.name).addHandler(lines)
    try:
        first = http_event("GET", "/things", caller="arn:aws:iam::123456789012:role/erp-import")
        second = http_event("GET", "/things", caller="arn:aws:iam::123456789012:user/store-001-till")
        handler(first, FakeContext())
        handler(second, FakeContext())
    finally:
        logging.getLogger(logger.name).removeHandler(lines)

    assert [(line["correlation_id"], line[CALLER_LOG_KEY]) for line in lines.lines] == [
        (first["requestContext"]["requestId"], "arn:aws:iam::123456789012:role/erp-import"),
        (second["requestContext"]["requestId"], "arn:aws:iam::123456789012:user/store-001-till"),
    ]


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", '{"name": "a", "name": "b"}', "duplicate_key"),
        ("application/json", '{"name": "a", "x": {"y": 1, "y": 1}}', "duplicate_key"),
        ("application/json", "[" * 100_000 + "]" * 100_000, "json_too_deep"),
        ("application/json", '{"name": ' + "1" * 50 + "}", "number_too_long"),
        ("application/json", '{"name": NaN}', "json_invalid"),
        ("application/x-www-form-urlencoded", "name=a", "json_invalid"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\na\r\n--x--\r\n',
            "json_invalid",
        ),
        ("application/xml", "<name>a</name>", "json_invalid"),
    ],
)
def test_a_body_is_strict_json_whatever_its_content_type_and_the_route_never_runs(
    content_type: str, body: str, code: str
) -> None:
    """Duplicate keys used to count the last value, deep nesting and long numbers were a 500, a
    form or multipart body was read as a form, and any other content type was a 500."""
    app = make_resolver()
    calls = []

    @app.post("/things")
    def post_things(thing: Annotated[Thing, Body()]) -> dict[str, str]:
        calls.append(thing)
        return {}

    event = http_event("POST", "/things", body=body)
    event["headers"]["content-type"] = content_type
    response = app.resolve(event, FakeContext())

    assert response["statusCode"] == 422
    error = json.loads(response["body"])["error"]
    assert [(d["field"], d["code"]) for d in error["details"]] == [("body", code)]
    assert calls == []
