"""The dead-letter command on SQS (the local backend's, which the local stack uses): a listing
consumes nothing, a redrive sends before it deletes and never sends a body round twice in a run,
a purge deletes only what it selects. Each test makes a source queue and its dead-letter queue of
its own, joined by a redrive policy as in template.yaml."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from inventory.messages.dead_letters import DeadLetter, Reason
from inventory.ops import cli
from inventory.ops.dead_letters import MOVED_BY_QUEUE, Selection, purge, records, redrive
from local.stack import LocalAws

pytestmark = pytest.mark.integration


@dataclass
class Queues:
    sqs: Any
    source: str
    dead_letters: str

    def dead_letter(self, body: Any, code: str = "validation_error") -> str:
        """A record as a function dead-letters it; its message id."""
        letter = DeadLetter(reason=Reason(code=code, message=f"{code} happened"), body=json.dumps(body))
        return str(self.sqs.send_message(QueueUrl=self.dead_letters, MessageBody=letter.model_dump_json())["MessageId"])

    def visible(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def take(self, url: str) -> list[str]:
        """Every body on the queue, received and deleted, as a consumer would."""
        bodies = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies


@pytest.fixture
def queues(local_aws: LocalAws) -> Iterator[Queues]:
    sqs = local_aws.client("sqs")
    name = f"ops-{os.urandom(4).hex()}"
    dead_letters = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive_policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})
    source = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive_policy})["QueueUrl"]
    yield Queues(sqs, source, dead_letters)
    sqs.delete_queue(QueueUrl=source)
    sqs.delete_queue(QueueUrl=dead_letters)


def event(n: int) -> dict[str, Any]:
    return {"detail-type": "Fulfillment Items Shipped", "detail": {"event_id": f"ev-{n}", "location_id": "s-1"}}


def test_a_listing_pages_through_every_record_and_leaves_them_all_visible(queues: Queues) -> None:
    for n in range(23):
        queues.dead_letter(event(n), code="validation_error" if n % 2 else "event_too_old")

    listed = records(queues.sqs, "fulfillment", queues.dead_letters, Selection())

    assert sorted(r.summary["event_id"] for r in listed) == sorted(f"ev-{n}" for n in range(23))
    assert len({r.message_id for r in listed}) == 23
    assert queues.visible(queues.dead_letters) == 23  # at once, not after the listing's timeout
    again = records(queues.sqs, "fulfillment", queues.dead_letters, Selection(code="validation_error"), limit=5)
    assert [r.reason.code for r in again] == ["validation_error"] * 5
    assert queues.visible(queues.dead_letters) == 23


def test_a_redrive_sends_the_original_bodies_and_deletes_only_those_it_sent(queues: Queues) -> None:
    ids = {n: queues.dead_letter(event(n), code="validation_error" if n < 3 else "event_too_old") for n in range(5)}
    queues.sqs.send_message(QueueUrl=queues.dead_letters, MessageBody=json.dumps(event(9)))  # moved by the queue

    outcome = redrive(queues.sqs, "fulfillment", queues.dead_letters, queues.source, Selection(code="validation_error"))

    assert sorted(r.message_id for r in outcome.done) == sorted(ids[n] for n in range(3))
    assert sorted(queues.take(queues.source)) == sorted(json.dumps(event(n)) for n in range(3))
    left = records(queues.sqs, "fulfillment", queues.dead_letters, Selection())
    assert sorted(r.reason.code for r in left) == ["event_too_old", "event_too_old", MOVED_BY_QUEUE]

    moved = redrive(queues.sqs, "fulfillment", queues.dead_letters, queues.source, Selection(code=MOVED_BY_QUEUE))
    assert queues.take(queues.source) == [json.dumps(event(9))]  # as it came: it had no reason around it
    assert len(moved.done) == 1


def test_a_redrive_by_id_says_which_ids_it_did_not_find(queues: Queues) -> None:
    first = queues.dead_letter(event(1))
    queues.dead_letter(event(2))

    named = Selection(message_ids=frozenset({first, "no-such-id"}))
    outcome = redrive(queues.sqs, "fulfillment", queues.dead_letters, queues.source, named)

    assert ([r.message_id for r in outcome.done], outcome.not_found) == ([first], ["no-such-id"])
    twice = redrive(
        queues.sqs, "fulfillment", queues.dead_letters, queues.source, Selection(message_ids=frozenset({first}))
    )
    assert (twice.done, twice.not_found) == ([], [first])
    assert queues.take(queues.source) == [json.dumps(event(1))]


def test_a_record_that_fails_again_during_a_redrive_is_not_sent_round_again(queues: Queues) -> None:
    """The worst case of a fix that did not work: the body comes straight back to the dead-letter
    queue (here it is sent there directly) while the redrive still reads it."""
    for n in range(3):
        queues.dead_letter(event(n))

    outcome = redrive(queues.sqs, "fulfillment", queues.dead_letters, queues.dead_letters, Selection(everything=True))

    assert len(outcome.done) == 3
    assert sorted(r.body for r in outcome.left) == sorted(json.dumps(event(n)) for n in range(3))
    assert queues.visible(queues.dead_letters) == 3  # each came back once, and waits to be redriven again


def test_a_dry_run_and_a_purge_without_yes_change_nothing(queues: Queues) -> None:
    for n in range(3):
        queues.dead_letter(event(n))

    trial = redrive(
        queues.sqs, "fulfillment", queues.dead_letters, queues.source, Selection(everything=True), dry_run=True
    )
    assert len(trial.done) == 3
    assert (
        len(purge(queues.sqs, "fulfillment", queues.dead_letters, Selection(everything=True), dry_run=True).done) == 3
    )

    assert (queues.visible(queues.source), queues.visible(queues.dead_letters)) == (0, 3)


def test_a_purge_deletes_the_records_of_its_code_only(queues: Queues) -> None:
    for n in range(4):
        queues.dead_letter(event(n), code="event_too_old" if n % 2 else "validation_error")

    outcome = purge(queues.sqs, "fulfillment", queues.dead_letters, Selection(code="event_too_old"))

    assert len(outcome.done) == 2
    remaining = records(queues.sqs, "fulfillment", queues.dead_letters, Selection())
    assert [r.reason.code for r in remaining] == ["validation_error", "validation_error"]
    assert queues.visible(queues.source) == 0


def test_a_send_that_fails_stops_the_redrive_and_loses_nothing(queues: Queues) -> None:
    queues.dead_letter(event(1))
    gone = queues.source.rsplit("/", 1)[0] + "/no-such-queue"

    outcome = redrive(queues.sqs, "fulfillment", queues.dead_letters, gone, Selection(everything=True))

    assert outcome.error is not None
    assert "NonExistentQueue" in outcome.error or "QueueDoesNotExist" in outcome.error
    assert (outcome.done, queues.visible(queues.dead_letters)) == ([], 1)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), environ=os.environ, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_the_command_by_queue_url_finds_where_records_go_by_the_redrive_policy(queues: Queues) -> None:
    record = queues.dead_letter(event(1))

    status, out, _ = run("dlq", "list", "--queue-url", queues.dead_letters, "--queue", "fulfillment")
    assert status == cli.OK
    (line,) = [line for line in out.splitlines() if not line.startswith("#")]
    assert line.startswith(f"fulfillment  {record}  ")
    assert "  receives=1  validation_error  validation_error happened  |" in line
    assert line.endswith("| Fulfillment Items Shipped event_id=ev-1 location_id=s-1")

    status, out, _ = run("dlq", "redrive", "--queue-url", queues.dead_letters, "--queue", "fulfillment", "--all")
    assert status == cli.OK
    assert f"redriven  {record}  validation_error  | Fulfillment Items Shipped event_id=ev-1" in out
    assert f"# fulfillment: redriven 1 to {queues.source}; 0 left, 0 not deleted, 0 not found" in out
    assert queues.take(queues.source) == [json.dumps(event(1))]

    status, out, _ = run(
        "dlq", "redrive", "--queue-url", queues.dead_letters, "--queue", "fulfillment", "--message-id", record
    )
    assert status == cli.INCOMPLETE
    assert f"not found  {record}" in out


def test_the_command_purges_only_with_yes(queues: Queues) -> None:
    queues.dead_letter(event(1), code="event_too_old")
    where = ("--queue-url", queues.dead_letters, "--queue", "fulfillment")

    status, out, _ = run("dlq", "purge", *where, "--code", "event_too_old")
    assert (status, queues.visible(queues.dead_letters)) == (cli.OK, 1)
    assert "# nothing was deleted: add --yes to delete these records" in out

    status, out, _ = run("dlq", "purge", *where, "--code", "event_too_old", "--yes")
    assert (status, queues.visible(queues.dead_letters)) == (cli.OK, 0)
    assert "# fulfillment: deleted 1; 0 left, 0 not deleted, 0 not found" in out


def test_the_command_finds_the_local_stacks_queues_by_their_names(local_aws: LocalAws) -> None:
    status, out, err = run("dlq", "list", "--local", "--json")

    assert status == cli.OK, err
    assert [line.split(":")[0] for line in err.splitlines()] == ["# fulfillment", "# imports", "# scheduled"]
    assert local_aws.queue_url("ImportDeadLetterQueue") in err
    assert all(json.loads(line)["queue"] in {"fulfillment", "imports", "scheduled"} for line in out.splitlines())
