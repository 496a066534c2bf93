"""The dead-letter command's reading of records, its selection, the names it finds queues by, and
its refusals: no queue is touched here (tests/integration and tests/e2e run it on queues)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from inventory.errors import InvalidInput
from inventory.messages.dead_letters import DeadLetter, Reason, reason_codes
from inventory.ops import cli
from inventory.ops.dead_letters import (
    MOVED_BY_QUEUE,
    NOT_INVOKED,
    RUN_FAILED,
    Record,
    Selection,
    read,
    reason_text,
    stamp,
    summarize,
    summary_text,
)
from inventory.ops.queues import (
    QUEUES,
    EnvironmentUrls,
    QueueNotFound,
    StackOutputs,
    environment_variable,
    local_name,
    output_key,
)
from local.template import Template
from tests.conftest import ROOT
from tests.unit.test_template import RESOURCES, TEMPLATE

SHIPPED = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Fulfillment Items Shipped",
    "source": "fulfilment",
    "detail": {
        "event_id": "ev-1",
        "location_id": "store-001",
        "shipment_id": "SHP-1",
        "logical_timestamp": 3,
        "occurred_at": "2026-11-27T10:14:58Z",
        "items": [{"product_id": "SKU-1", "quantity": 1}],
    },
}


def message(body: str, message_id: str = "m-1", **attributes: Any) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "Body": body,
        "Attributes": {"SentTimestamp": "1796205298000", "ApproximateReceiveCount": "2"},
        "MessageAttributes": {name: {"StringValue": value, "DataType": "String"} for name, value in attributes.items()},
    }


def dead_lettered(body: str, code: str = "validation_error", **reason: Any) -> str:
    letter = DeadLetter(reason=Reason(code=code, message=reason.pop("message", "it is wrong"), **reason), body=body)
    return letter.model_dump_json()


# ------------------------------------------------------------------------------------------ reading


def test_a_record_a_function_dead_lettered_gives_its_reason_and_the_body_as_it_came() -> None:
    body = json.dumps(SHIPPED)
    record = read("fulfillment", message(dead_lettered(body, message="location 'store-001' does not exist")))

    assert (record.queue, record.message_id, record.receive_count) == ("fulfillment", "m-1", 2)
    assert stamp(record.sent_at) == "2026-12-02T09:54:58Z"
    assert (record.reason.code, record.reason.message) == ("validation_error", "location 'store-001' does not exist")
    assert record.body == body  # byte for byte: what a redrive sends back
    assert record.summary == {
        "type": "Fulfillment Items Shipped",
        "event_id": "ev-1",
        "location_id": "store-001",
        "shipment_id": "SHP-1",
    }


def test_a_record_the_queue_moved_by_itself_is_the_body_without_a_reason() -> None:
    body = json.dumps({"location_id": "store-001", "import_id": "imp-7"})
    record = read("imports", message(body))

    assert record.reason.code == MOVED_BY_QUEUE
    assert "without a reason" in record.reason.message
    assert record.body == body
    assert summary_text(record.summary) == "import step location_id=store-001 import_id=imp-7"


def test_a_body_that_looks_like_a_dead_letter_but_is_not_one_is_taken_as_it_is() -> None:
    body = json.dumps({"reason": "no code", "body": {"not": "a string"}})

    assert read("imports", message(body)).reason.code == MOVED_BY_QUEUE


def test_a_failed_scheduled_run_shows_lambdas_condition_and_error() -> None:
    invocation_record = {
        "version": "1.0",
        "timestamp": "2026-12-01T09:00:05.123Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:stack-OutboxRelayFunction-x1:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 1,
        },
        "requestPayload": {"detail-type": "Scheduled Event", "source": "aws.scheduler"},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "the table is throttled", "errorType": "TemporarilyUnavailable"},
    }
    record = read("scheduled", message(json.dumps(invocation_record)))

    assert record.reason.code == RUN_FAILED
    assert record.reason.message == "RetriesExhausted; TemporarilyUnavailable: the table is throttled"
    assert summary_text(record.summary) == (
        "scheduled run function=stack-OutboxRelayFunction-x1 at=2026-12-01T09:00:05.123Z"
    )


def test_a_scheduled_run_the_scheduler_could_not_start_shows_its_error_attributes() -> None:
    body = json.dumps({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}})
    record = read("scheduled", message(body, ERROR_CODE="AccessDenied", ERROR_MESSAGE="not allowed to invoke"))

    assert (record.reason.code, record.reason.message) == (NOT_INVOKED, "AccessDenied: not allowed to invoke")


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        (
            json.dumps(
                {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "imports/s-1/initial/i+1.csv"}}}]}
            ),
            "files dropped files=s3://b/imports/s-1/initial/i 1.csv",
        ),
        (json.dumps({"Records": "not a list"}), "S3 notification (unreadable)"),
        ("not json at all\n\n with lines", "text start=not json at all with lines"),
        ("[1, 2]", "JSON start=[1, 2]"),
        (json.dumps({"b": 1, "a": 2}), "JSON keys=a, b"),
        (json.dumps({"detail-type": "Allocation Released", "detail": "oops"}), "Allocation Released"),
    ],
)
def test_the_summary_says_what_any_body_is_about(body: str, summary: str) -> None:
    assert summary_text(summarize(body)) == summary


def test_the_reason_on_one_line_names_the_fields_at_fault() -> None:
    details = [{"field": f"detail.items[{n}].quantity", "code": "greater_than", "message": "> 0"} for n in range(5)]
    reason = Reason(code="validation_error", message="the event is\nnot valid", details=details)

    assert reason_text(reason) == (
        "the event is not valid [detail.items[0].quantity: > 0; detail.items[1].quantity: > 0; "
        "detail.items[2].quantity: > 0; and 2 more]"
    )


def test_the_handlers_and_the_command_read_one_shape() -> None:
    """What the handlers send (reason_of an InventoryError) is what the command reads."""
    from inventory.services.outcomes import reason_of

    reason = reason_of(InvalidInput("bad", details=[{"field": "detail.x", "code": "c", "message": "m"}]))
    sent = json.dumps(DeadLetter(reason=reason, body="{}").model_dump())
    assert json.loads(sent) == {
        "reason": {
            "code": "validation_error",
            "message": "bad",
            "details": [{"field": "detail.x", "code": "c", "message": "m"}],
        },
        "body": "{}",
    }
    assert read("fulfillment", message(sent)).reason == reason
    assert reason_of(KeyError("x")).code == "unexpected_error"


def test_the_stable_reason_codes_are_all_known() -> None:
    stable = {
        "validation_error",
        "event_too_old",
        "item_too_large",
        "temporarily_unavailable",
        "unexpected_error",
        "import_in_progress",
        "event_id_reused",
        "not_found",
    }
    assert stable <= set(reason_codes())
    assert {MOVED_BY_QUEUE, RUN_FAILED, NOT_INVOKED} <= set(cli.all_codes())


# ---------------------------------------------------------------------------------------- selection


def record(message_id: str, code: str) -> Record:
    return read("fulfillment", message(dead_lettered("{}", code=code), message_id=message_id))


def test_a_selection_takes_the_records_named_or_of_a_code_or_all() -> None:
    a, b = record("a", "validation_error"), record("b", "event_too_old")

    assert [r.message_id for r in (a, b) if Selection(message_ids=frozenset({"b"}))(r)] == ["b"]
    assert [r.message_id for r in (a, b) if Selection(code="validation_error")(r)] == ["a"]
    assert [r.message_id for r in (a, b) if Selection(everything=True)(r)] == ["a", "b"]


def test_a_selection_by_ids_is_complete_once_every_id_was_seen() -> None:
    named = Selection(message_ids=frozenset({"a", "b"}))

    assert not named.found_all({"a"})
    assert named.found_all({"a", "b", "c"})
    assert not Selection(code="x").found_all({"a", "b"})  # a code may match any record still unread


def test_a_selection_has_one_criterion() -> None:
    with pytest.raises(ValueError, match="one of them"):
        Selection(message_ids=frozenset({"a"}), code="x")


# ------------------------------------------------------------------------------------------- queues


def test_every_queue_of_the_command_is_in_the_template_with_its_source_and_its_outputs() -> None:
    for queue in QUEUES.values():
        assert RESOURCES[queue.logical_id]["Type"] == "AWS::SQS::Queue"
        assert TEMPLATE["Outputs"][output_key(queue.logical_id)]["Value"] == {"Ref": queue.logical_id}
        if queue.source is not None:
            redrive = RESOURCES[queue.source]["Properties"]["RedrivePolicy"]
            assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [queue.logical_id, "Arn"]}
            assert TEMPLATE["Outputs"][output_key(queue.source)]["Value"] == {"Ref": queue.source}


def test_the_command_names_local_queues_as_the_local_stack_does() -> None:
    template = Template(ROOT / "template.yaml")
    for queue in QUEUES.values():
        for logical_id in filter(None, (queue.logical_id, queue.source)):
            assert local_name(logical_id) == template.physical_name(logical_id)


def test_environment_variables_are_named_after_the_outputs() -> None:
    assert environment_variable("FulfillmentDeadLetterQueue") == "FULFILLMENT_DEAD_LETTER_QUEUE_URL"
    assert environment_variable("ImportQueue") == "IMPORT_QUEUE_URL"
    urls = EnvironmentUrls({"IMPORT_QUEUE_URL": "https://sqs/1/q"})
    assert urls.url("ImportQueue") == "https://sqs/1/q"
    with pytest.raises(QueueNotFound, match="IMPORT_DEAD_LETTER_QUEUE_URL is not set"):
        urls.url("ImportDeadLetterQueue")


class FakeCloudFormation:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.calls = 0

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.calls += 1
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}


def test_a_stacks_outputs_are_read_once_and_a_missing_one_is_named() -> None:
    cloudformation = FakeCloudFormation({"FulfillmentDeadLetterQueueUrl": "https://sqs/1/dlq"})
    outputs = StackOutputs(cloudformation, "inventory-prod")  # type: ignore[arg-type]

    assert outputs.url("FulfillmentDeadLetterQueue") == "https://sqs/1/dlq"
    with pytest.raises(QueueNotFound, match="has no output FulfillmentQueueUrl"):
        outputs.url("FulfillmentQueue")
    assert cloudformation.calls == 1


# -------------------------------------------------------------------------------------- the command


class NoAws(cli.Aws):
    """An Aws that fails the test if the command reaches for a client."""

    def sqs(self) -> Any:
        raise AssertionError("no SQS call expected")

    def cloudformation(self) -> Any:
        raise AssertionError("no CloudFormation call expected")


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), environ=environ or {}, out=out, err=err, aws=NoAws({}))
    return status, out.getvalue(), err.getvalue()


def test_the_scheduled_runs_are_not_redriven() -> None:
    environ = {"SCHEDULED_RUNS_DEAD_LETTER_QUEUE_URL": "https://sqs/1/scheduled"}
    status, _, err = run("dlq", "redrive", "--queue", "scheduled", "--all", environ=environ)

    assert status == cli.CANNOT_RUN
    assert "not redriven: the next run does what a failed one did not" in err


def test_a_queue_without_a_url_is_named_with_where_to_give_one() -> None:
    status, _, err = run("dlq", "list", "--queue", "fulfillment")

    assert status == cli.CANNOT_RUN
    assert "FULFILLMENT_DEAD_LETTER_QUEUE_URL is not set (or pass --stack NAME, --local or --queue-url)" in err


def test_a_redrive_needs_exactly_one_selection(capsys: pytest.CaptureFixture[str]) -> None:
    for selection in ([], ["--all", "--code", "validation_error"]):
        with pytest.raises(SystemExit) as exited:
            run("dlq", "redrive", "--queue", "fulfillment", *selection)
        assert exited.value.code == 2
    assert "one of the arguments --message-id --code --all is required" in capsys.readouterr().err


def test_a_source_url_goes_with_a_queue_url() -> None:
    status, _, err = run("dlq", "redrive", "--queue", "imports", "--all", "--source-queue-url", "https://sqs/1/q")

    assert (status, err.strip()) == (cli.CANNOT_RUN, "error: --source-queue-url goes with --queue-url")


def test_an_unknown_reason_code_is_warned_about() -> None:
    _, _, err = run("dlq", "list", "--queue", "imports", "--code", "validaton_error")

    assert "'validaton_error' is not a reason code of this version" in err


def test_the_codes_are_listed_without_aws() -> None:
    status, out, _ = run("dlq", "codes")

    assert status == cli.OK
    assert out.split() == cli.all_codes()


def test_the_command_loads_none_of_what_the_functions_pay_for_at_cold_start() -> None:
    heavy = ("aws_lambda_powertools", "boto3", "inventory.api", "inventory.wiring")
    probe = f"import sys, inventory.ops.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        # no bytecode left beside the layer's modules (bench-cold-import measures them compiled)
        env={"PYTHONPATH": str(ROOT / "layers" / "domain"), "PATH": "", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
