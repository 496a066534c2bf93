"""Every file in events/ is a valid event for its function, and its handler answers it in-process
against the local backends (these are the files `sam local invoke <Function> -e` takes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model, EventBridgeModel

from tests.conftest import ROOT, FakeContext, load_handler
from tests.unit.test_template import FUNCTIONS

pytestmark = pytest.mark.integration

EVENT_FILES = sorted((ROOT / "events").glob("*.json"))
FOLDERS = {Path(f["Properties"]["CodeUri"]).name for f in FUNCTIONS.values()}
# What each sample answers when the files are invoked in this order on an empty table.
EXPECTED_STATUS = {
    "api_docs_not_found": 404,
    "api_docs_openapi": 200,
    "locations_get": 200,
    "locations_list": 200,
    "locations_put": 201,
    "locations_put_dc": 201,
    "locations_put_invalid": 422,
    "master_switch_put": 409,
    "master_switch_readiness": 200,
    "master_switch_revert": 200,
}
ORDER = ["locations_put", "locations_put_dc", "locations_put_invalid", "locations_get", "locations_list"]


def function_of(path: Path) -> str:
    return next(name for name in sorted(FOLDERS, key=len, reverse=True) if path.stem.startswith(name))


def test_every_event_file_belongs_to_a_function_and_has_an_expectation() -> None:
    assert EVENT_FILES
    for path in EVENT_FILES:
        assert function_of(path) in FOLDERS
        assert path.stem in EXPECTED_STATUS or path.stem.startswith("outbox_relay"), path.name


@pytest.mark.parametrize(
    "path",
    sorted(EVENT_FILES, key=lambda p: (p.stem not in ORDER, ORDER.index(p.stem) if p.stem in ORDER else 0, p.stem)),
    ids=lambda p: p.stem,
)
def test_the_handler_answers_its_sample_event(path: Path) -> None:
    event: dict[str, Any] = json.loads(path.read_text())
    handler = load_handler(function_of(path))

    if event.get("version") == "2.0":
        APIGatewayProxyEventV2Model.model_validate(event)
        response = handler.lambda_handler(event, FakeContext())
        assert response["statusCode"] == EXPECTED_STATUS[path.stem], response["body"]
        body = json.loads(response["body"])
        if response["statusCode"] >= 400:
            assert set(body["error"]) == {"code", "message", "details"}
    else:
        EventBridgeModel.model_validate(event)
        result = handler.lambda_handler(event, FakeContext(remaining_ms=5_300))
        assert result["rounds"] >= 1
        assert result["failed"] == 0
