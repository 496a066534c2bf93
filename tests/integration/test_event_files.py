"""Every file in events/ is a valid event for its function (the files `sam local invoke <Function>
-e` takes), and its handler answers it in-process against the local backends, in the order a
day at a store would send them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model, EventBridgeModel, SqsModel
from botocore.client import BaseClient

from local.stack import LocalAws
from tests.conftest import ROOT, FakeContext, load_handler
from tests.unit.test_template import FUNCTIONS

pytestmark = pytest.mark.integration

EVENT_FILES = {path.stem: path for path in (ROOT / "events").glob("*.json")}
FOLDERS = {Path(f["Properties"]["CodeUri"]).name for f in FUNCTIONS.values()}
NO_FAILURES = {"batchItemFailures": []}
# (file, what its handler answers: an HTTP status, or the batch response of a queue handler)
SCENARIO: list[tuple[str, Any]] = [
    ("locations_put", 201),
    ("locations_put_dc", 201),
    ("locations_put_invalid", 422),
    ("locations_get", 200),
    ("locations_list", 200),
    ("stock_locations_put", 201),  # backroom, salable: a type of every location
    ("stock_locations_put_main", 409),  # main_always_salable
    ("stock_locations_list", 200),
    ("master_switch_readiness", 200),
    ("master_switch_put", 409),  # no import yet: not_ready
    ("master_switch_revert", 200),
    ("stock_imports_post", 202),
    ("stock_imports_post_file", 422),  # the file named does not exist
    ("stock_import_worker_step", NO_FAILURES),
    ("stock_imports_get", 200),
    ("stock_get", 200),
    ("stock_list", 200),
    ("stock_import_worker_file_dropped", NO_FAILURES),
    ("stock_import_worker_step_dropped_file", NO_FAILURES),  # SKU-1001: 4 units
    ("stock_import_worker_purge", NO_FAILURES),  # what erp-delta-0001 ended: none; it sends itself on
    ("allocations_post", 201),  # 2 of them for ORD-5521-1
    ("allocations_get", 200),
    ("allocations_post_insufficient", 409),  # SKU-1002 has none: refused whole
    ("shipment_events_allocations", NO_FAILURES),  # one opened, one released first, one refused
    ("stock_availability", 200),
    ("safety_stock_put", 200),  # SKU-1001 holds 1 back, SKU-1002 the location's default
    ("inventory_transactions_post", 201),  # under the ERP master: recorded, pending its next import
    ("inventory_transactions_get", 200),
    ("inventory_transactions_list", 200),
    ("cycle_counts_post", 201),
    ("cycle_counts_post_mispick", 201),  # holds imports and the switch back
    ("cycle_counts_delete", 200),  # cancelled: they are free again
    ("cycle_counts_results_post", 200),  # under the ERP master: recorded and published
    ("cycle_counts_get", 200),
    ("cycle_counts_list", 200),
    ("allocations_delete", 200),
    ("availability_exports_post", 202),  # a full file of store-001
    ("availability_export_worker_fan_out", NO_FAILURES),  # its one unit, on the export queue
    ("availability_export_worker_location", NO_FAILURES),  # the file, the manifest, the event
    ("availability_exports_get", 200),
    ("availability_exports_list", 200),
    ("availability_export_worker_scheduled", {"export_id": "scheduled-20261127T0900"}),  # every enabled location
    ("shipment_events_shipped_and_handed_over", NO_FAILURES),
    ("shipment_events_poison_record", NO_FAILURES),  # dead-lettered with its reason, and acknowledged
    ("api_docs_openapi", 200),
    ("api_docs_not_found", 404),
    ("outbox_relay_scheduled", None),
    (
        "abandoned_requests_scheduled",
        {"released_allocations": 0, "failed_imports": 0, "completed_transactions": 0, "completed_counts": 0},
    ),  # none abandoned
]


def function_of(stem: str) -> str:
    return next(name for name in sorted(FOLDERS, key=len, reverse=True) if stem.startswith(name))


def test_every_event_file_belongs_to_a_function_and_to_the_scenario() -> None:
    assert {stem for stem, _ in SCENARIO} == set(EVENT_FILES)
    for stem in EVENT_FILES:
        assert function_of(stem) in FOLDERS


def allowed_actions(function: str) -> set[tuple[str, str]]:
    """(IAM action, resource) pairs the function's policy allows: "table", "index/<name>", or the
    logical id of a queue, bucket or bus."""
    folder = {Path(f["Properties"]["CodeUri"]).name: name for name, f in FUNCTIONS.items()}[function]
    allowed = set()
    for policy in FUNCTIONS[folder]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []):
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                text = json.dumps(resource)
                name = "table" if "InventoryTable" in text else next(iter(resource.values()))
                if isinstance(name, list):
                    name = name[0]
                if "/index/" in text:
                    name = "index/" + text.split("/index/")[1].split('"')[0]
                allowed |= {(action, str(name).split("/*")[0].split(".")[0]) for action in statement["Action"]}
    return allowed


IAM_ACTION_OF = {"s3:HeadObject": "s3:GetObject"}  # HeadObject is authorized as GetObject


def test_each_handler_answers_its_sample_events_in_order(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """... and calls only what its function's policy in the template allows (locally nothing
    enforces IAM: a missing action would only show on AWS)."""
    current: list[str] = []
    calls: set[tuple[str, str, str]] = set()
    make_api_call = BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.signing_name
        action = IAM_ACTION_OF.get(f"{service}:{operation}", f"{service}:{operation}")
        target = "table"
        if service == "dynamodb" and params.get("IndexName"):
            target = f"index/{params['IndexName']}"
        if current and service == "dynamodb":
            calls.add((current[-1], action, target))
        elif current:
            calls.add((current[-1], action, ""))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    dropped = json.loads(EVENT_FILES["stock_import_worker_file_dropped"].read_text())
    s3_event = json.loads(dropped["Records"][0]["body"])["Records"][0]["s3"]
    local_aws.client("s3").put_object(
        Bucket=s3_event["bucket"]["name"], Key=s3_event["object"]["key"], Body=b"product_id,quantity\nSKU-1001,4\n"
    )
    for stem, expected in SCENARIO:
        event: dict[str, Any] = json.loads(EVENT_FILES[stem].read_text())
        handler = load_handler(function_of(stem))
        current.append(function_of(stem))
        if event.get("version") == "2.0":
            APIGatewayProxyEventV2Model.model_validate(event)
            response = handler.lambda_handler(event, FakeContext())
            assert response["statusCode"] == expected, (stem, response["body"])
            if expected >= 400:
                assert set(json.loads(response["body"])["error"]) == {"code", "message", "details"}
        elif "Records" in event:
            SqsModel.model_validate(event)
            assert handler.lambda_handler(event, FakeContext(remaining_ms=300_000)) == expected, stem
        else:
            EventBridgeModel.model_validate(event)
            if expected is None:  # the relay, which polls until shortly before its timeout
                result = handler.lambda_handler(event, FakeContext(remaining_ms=5_300))
                assert (result["rounds"] >= 1, result["failed"]) == (True, 0)
            else:
                assert handler.lambda_handler(event, FakeContext(remaining_ms=60_000)) == expected, stem

    current.clear()
    stock = load_handler("stock").lambda_handler(json.loads(EVENT_FILES["stock_get"].read_text()), FakeContext())
    assert json.loads(stock["body"])["stock_locations"][1]["stock_location"] == "display"

    for function, action, target in sorted(calls):
        allowed = allowed_actions(function)
        if target:
            assert (action, target) in allowed, f"{function} calls {action} on the {target}: add it to its policy"
        else:
            assert action in {a for a, _ in allowed}, f"{function} calls {action}: add it to its policy"
