"""Reading, redriving and deleting the records of a dead-letter queue.

SQS has no way to look at a message without receiving it, so a scan receives every visible record
once, keeps it out of other readers' sight while the scan runs (the visibility timeout it asks
for), and makes what it did not delete visible again when it ends. A record received twice (its
timeout ran out during a long scan) counts once; a page that brings nothing new ends the scan.

A redrive sends a record's original body to the source queue first and deletes the record after:
a failure between the two leaves the record in both queues, which the handlers tolerate (each
event line, allocation and import step takes effect once, by its ids), and never in neither.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from inventory.messages.dead_letters import DeadLetter, Reason
from inventory.messages.import_work import FilesDropped

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef, MessageTypeDef

# Reasons of records that the functions did not write themselves:
MOVED_BY_QUEUE = "moved_by_queue"  # the source queue's redrive policy moved the record, as it came
RUN_FAILED = "run_failed"  # Lambda's record of a scheduled run that failed
NOT_INVOKED = "not_invoked"  # EventBridge Scheduler could not start a scheduled run
TOOL_CODES = (MOVED_BY_QUEUE, RUN_FAILED, NOT_INVOKED)

LIST_HOLD_SECONDS = 30  # how long a listing keeps each record from other readers, at most
CHANGE_HOLD_SECONDS = 120  # the same for a redrive or a purge, which do more per record
PAGE = 10  # SQS's most per receive and per batch
WAIT_SECONDS = 1  # long polling: asks every SQS server, so an empty answer means an empty queue
SUMMARY_FIELDS = ("event_id", "location_id", "shipment_id", "allocation_id", "import_id")


@dataclass(frozen=True)
class Record:
    """One record of a dead-letter queue, as an operator reads it."""

    queue: str  # the queue's short name (fulfillment, imports, scheduled)
    message_id: str
    sent_at: datetime | None  # when it reached the dead-letter queue
    receive_count: int  # as SQS counts it: every listing receives the record once more
    reason: Reason
    body: str  # the original body: what a redrive sends back
    summary: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "message_id": self.message_id,
            "sent_at": stamp(self.sent_at),
            "receive_count": self.receive_count,
            "reason": self.reason.model_dump(),
            "summary": self.summary,
            "body": self.body,
        }


def stamp(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def read(queue: str, message: MessageTypeDef) -> Record:
    """A received message as a record: the functions' `{"reason", "body"}`, or a body without one."""
    body = message.get("Body", "")
    attributes = message.get("Attributes") or {}
    sent = attributes.get("SentTimestamp")
    reason, original = reason_and_body(body, message.get("MessageAttributes") or {})
    return Record(
        queue=queue,
        message_id=message.get("MessageId", ""),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        receive_count=int(attributes.get("ApproximateReceiveCount") or 0),
        reason=reason,
        body=original,
        summary=summarize(original),
    )


def reason_and_body(body: str, message_attributes: Mapping[str, Any]) -> tuple[Reason, str]:
    try:
        letter = DeadLetter.model_validate_json(body)
    except ValidationError:
        pass
    else:
        return letter.reason, letter.body
    error_code = (message_attributes.get("ERROR_CODE") or {}).get("StringValue")
    if error_code:  # EventBridge Scheduler's dead-letter event: the reason is in its attributes
        error_message = (message_attributes.get("ERROR_MESSAGE") or {}).get("StringValue") or ""
        return Reason(code=NOT_INVOKED, message=f"{error_code}: {error_message}".rstrip(": ")), body
    parsed = _json(body)
    if isinstance(parsed, dict) and isinstance(parsed.get("requestContext"), dict):
        return Reason(code=RUN_FAILED, message=_run_failure(parsed)), body
    message = (
        "moved here by the queue after its last delivery, without a reason: the function timed out, "
        "crashed, or could not write the reason (see its logs)"
    )
    return Reason(code=MOVED_BY_QUEUE, message=message), body


def _run_failure(record: dict[str, Any]) -> str:
    """Lambda's invocation record of an asynchronous invocation that failed."""
    context = record["requestContext"]
    response = record.get("responsePayload")
    parts = [str(context.get("condition") or "failed")]
    if isinstance(response, dict) and (response.get("errorType") or response.get("errorMessage")):
        parts.append(f"{response.get('errorType') or 'Error'}: {response.get('errorMessage') or ''}".strip())
    return "; ".join(parts)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def summarize(body: str) -> dict[str, str]:
    """What the body is about, in a few fields (whatever it holds: it may be why it failed)."""
    parsed = _json(body)
    if not isinstance(parsed, dict):
        return {"type": "text" if parsed is None else "JSON", "start": _one_line(body)[:60]}
    if isinstance(parsed.get("detail-type"), str):  # an event from the bus
        detail = parsed.get("detail")
        fields = _fields(detail) if isinstance(detail, dict) else {}
        return {"type": parsed["detail-type"], **fields}
    if "Records" in parsed:
        try:
            files = FilesDropped.model_validate(parsed).files()
        except ValidationError:
            return {"type": "S3 notification (unreadable)"}
        return {"type": "files dropped", "files": ", ".join(f"s3://{bucket}/{key}" for bucket, key in files)}
    if isinstance(parsed.get("requestContext"), dict):
        arn = str(parsed["requestContext"].get("functionArn") or "").split(":")  # ...:function:NAME[:version]
        function = arn[6] if len(arn) > 6 else ":".join(arn)
        return {"type": "scheduled run", "function": function, "at": str(parsed.get("timestamp", ""))}
    if "location_id" in parsed or "import_id" in parsed:
        return {"type": "import step", **_fields(parsed)}
    return {"type": "JSON", "keys": ", ".join(sorted(map(str, parsed)))[:80]}


def _fields(values: dict[str, Any]) -> dict[str, str]:
    return {name: str(values[name]) for name in SUMMARY_FIELDS if values.get(name) is not None}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def summary_text(summary: Mapping[str, str]) -> str:
    return " ".join([summary.get("type", "?"), *(f"{key}={value}" for key, value in summary.items() if key != "type")])


def reason_text(reason: Reason) -> str:
    """The reason on one line: its message, and the fields it names."""
    problems = [
        f"{detail['field']}: {detail.get('message', detail.get('code', ''))}" if "field" in detail else str(detail)
        for detail in reason.details[:3]
    ]
    more = [f"and {len(reason.details) - 3} more"] if len(reason.details) > 3 else []
    text = reason.message + (f" [{'; '.join(problems + more)}]" if problems else "")
    return _one_line(text)


# ---------------------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """Which records a command acts on: the ones named, those with a reason code, or all."""

    message_ids: frozenset[str] = frozenset()
    code: str | None = None
    everything: bool = False

    def __post_init__(self) -> None:
        chosen = sum((bool(self.message_ids), self.code is not None, self.everything))
        if chosen > 1:
            raise ValueError("select by message ids, by a reason code, or everything: one of them")

    def __call__(self, record: Record) -> bool:
        if self.message_ids:
            return record.message_id in self.message_ids
        if self.code is not None:
            return record.reason.code == self.code
        return True

    def found_all(self, found: set[str]) -> bool:
        """Whether nothing more can be selected: every named record has been seen."""
        return bool(self.message_ids) and self.message_ids <= found


# ---------------------------------------------------------------------------------------- the queue


@dataclass
class Scan:
    """The records of one queue, each received once and hidden until the scan is closed."""

    sqs: SQSClient
    queue: str
    url: str
    hold_seconds: int = LIST_HOLD_SECONDS
    _handles: dict[str, str] = field(default_factory=dict)  # message id: its latest receipt handle
    _deleted: set[str] = field(default_factory=set)

    def __enter__(self) -> Scan:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Record]:
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=PAGE,
                VisibilityTimeout=self.hold_seconds,
                WaitTimeSeconds=WAIT_SECONDS,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            new = []
            for message in response.get("Messages", []):
                message_id = message.get("MessageId", "")
                if message_id not in self._handles:
                    new.append(message)
                self._handles[message_id] = message.get("ReceiptHandle", "")
            if not new:  # empty, or only records seen already: every visible record has been read
                return
            for message in new:
                yield read(self.queue, message)

    def delete(self, record: Record) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=self._handles[record.message_id])
        self._deleted.add(record.message_id)

    def close(self) -> None:
        """Make every record received and not deleted visible again at once."""
        held = [handle for message_id, handle in self._handles.items() if message_id not in self._deleted]
        for start in range(0, len(held), PAGE):
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(held[start : start + PAGE])
            ]
            # An entry fails when its record is visible already (its timeout ran out); a call that
            # fails leaves its records hidden until their timeout runs out: late, not lost.
            with contextlib.suppress(ClientError, BotoCoreError):
                self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
        self._handles.clear()


def records(
    sqs: SQSClient, queue: str, url: str, select: Callable[[Record], bool], limit: int | None = None
) -> list[Record]:
    """The queue's records that `select` keeps, without consuming any (up to `limit` of them)."""
    kept: list[Record] = []
    with Scan(sqs, queue, url, LIST_HOLD_SECONDS) as scan:
        for record in scan:
            if select(record):
                kept.append(record)
                if limit is not None and len(kept) >= limit:
                    break
    return kept


@dataclass
class Outcome:
    """What a redrive or a purge did, record by record."""

    done: list[Record] = field(default_factory=list)  # redriven (or deleted, or would be: a dry run)
    left: list[Record] = field(default_factory=list)  # a copy of a body already sent by this run
    not_deleted: list[tuple[Record, str]] = field(default_factory=list)  # sent, then the delete failed
    not_found: list[str] = field(default_factory=list)  # message ids named and not in the queue
    error: str | None = None  # what stopped the run before it had seen every record


def redrive(
    sqs: SQSClient, queue: str, url: str, source_url: str, select: Selection, *, dry_run: bool = False
) -> Outcome:
    """Send each selected record's original body to `source_url`, then delete it.

    A body goes back at most once per run: a record that fails again comes back to this queue with
    the same body while the run goes on, and is left there rather than sent round again.
    """
    outcome = Outcome()
    sent: set[str] = set()
    seen: set[str] = set()
    try:
        with Scan(sqs, queue, url, CHANGE_HOLD_SECONDS) as scan:
            for record in scan:
                seen.add(record.message_id)
                if not select(record):
                    continue
                if record.body in sent:
                    outcome.left.append(record)
                elif dry_run:
                    sent.add(record.body)
                    outcome.done.append(record)
                else:
                    sqs.send_message(QueueUrl=source_url, MessageBody=record.body)  # first: never lost
                    sent.add(record.body)
                    _delete(scan, record, outcome)
                if select.found_all(seen):
                    break
    except (ClientError, BotoCoreError) as error:  # a call failed: a record not yet sent stays where it is
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.not_found = [] if outcome.error else sorted(select.message_ids - seen)
    return outcome


def purge(sqs: SQSClient, queue: str, url: str, select: Selection, *, dry_run: bool = False) -> Outcome:
    """Delete the selected records (they will never succeed, and have been read)."""
    outcome = Outcome()
    seen: set[str] = set()
    try:
        with Scan(sqs, queue, url, CHANGE_HOLD_SECONDS) as scan:
            for record in scan:
                seen.add(record.message_id)
                if select(record):
                    if dry_run:
                        outcome.done.append(record)
                    else:
                        _delete(scan, record, outcome)
                if select.found_all(seen):
                    break
    except (ClientError, BotoCoreError) as error:
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.not_found = [] if outcome.error else sorted(select.message_ids - seen)
    return outcome


def _delete(scan: Scan, record: Record, outcome: Outcome) -> None:
    try:
        scan.delete(record)
    except (ClientError, BotoCoreError) as error:
        outcome.not_deleted.append((record, f"{type(error).__name__}: {error}"))
    else:
        outcome.done.append(record)
