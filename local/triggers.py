"""Queue and schedule triggers, delivered to the handlers as the template declares them.

- `SQS` events: a poller per event source, as Lambda's event source mapping does: batches of up
  to BatchSize, the SQS event, and deletion of what succeeded (all of a successful batch, none of a
  failed one, all but the batchItemFailures with ReportBatchItemFailures), so failures come back
  after the visibility timeout and the queue's redrive policy moves them to its dead-letter queue.
- `EventBridgeRule`/`CloudWatchEvent` and `S3` events: their delivery queue (see local.provision)
  is polled and each message is one asynchronous invocation with the event it carries.
- `Schedule`/`ScheduleV2` events with `rate(...)`: a scheduled event at that rate (divided by
  LOCAL_SCHEDULE_SCALE), never two invocations of one schedule at once; a ScheduleV2 (EventBridge
  Scheduler) fires at once on start, a Schedule (an EventBridge rule) one period after.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.provision import RULE_EVENTS, delivery_queue_name
from local.runtime import Invocation
from local.template import ACCOUNT_ID, PARTITION, FunctionSpec, Template

Invoke = Callable[[str, Any], Invocation]
RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
POLL_WAIT_SECONDS = 1  # long polling; also how long stopping waits for a poller


def rate_seconds(expression: str) -> float | None:
    match = RATE.fullmatch(expression.strip())
    return None if match is None else int(match.group(1)) * UNIT_SECONDS[match.group(2).rstrip("s")]


def sqs_record(message: dict[str, Any], source_arn: str, region: str) -> dict[str, Any]:
    """One record of the SQS event, from a ReceiveMessage message, as Lambda builds it."""
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(value["BinaryValue"]).decode() if "BinaryValue" in value else None,
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
            "dataType": value["DataType"],
        }
        attributes[name] = {key: item for key, item in attributes[name].items() if item is not None}
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {},
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(invocation: Invocation, batch_ids: list[str], report_failures: bool) -> set[str]:
    """Which messages of a batch to leave on the queue, after Lambda's rules for the response."""
    if not invocation.ok:
        return set(batch_ids)
    if not report_failures or not isinstance(invocation.result, dict):
        return set()
    failures = invocation.result.get("batchItemFailures")
    if not failures:
        return set()
    ids = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)  # an invalid response fails the whole batch
        ids.add(identifier)
    return ids


def scheduled_event(rule_arn: str, region: str, source: str = "aws.events") -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": source,
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _input_path(event: Any, path: str) -> Any:
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            event = event[part]
    return event


class Triggers:
    def __init__(
        self,
        template: Template,
        functions: dict[str, FunctionSpec],
        invoke: Invoke,
        sqs: Any,
        *,
        schedule_scale: float = 1.0,
    ) -> None:
        self.template = template
        self.invoke = invoke
        self.sqs = sqs
        self.schedule_scale = schedule_scale
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sources: list[str] = []  # one line per trigger, for the start-up summary
        for spec in functions.values():
            for event in spec.events:
                self._add(spec, event.name, event.type, event.properties)

    def _add(self, spec: FunctionSpec, event_name: str, kind: str, properties: dict[str, Any]) -> None:
        target: Callable[[], None]
        if kind == "SQS":
            if properties.get("Enabled", True) in (False, "false"):
                return
            arn = properties["Queue"]
            target = self._sqs_poller(spec, arn, properties)
            description = f"SQS {arn.rsplit(':', 1)[-1]} -> {spec.logical_id}"
        elif kind in (*RULE_EVENTS, "S3"):
            target = self._delivery_poller(spec, delivery_queue_name(spec.logical_id, event_name), kind, properties)
            description = f"{kind} {event_name} -> {spec.logical_id}"
        elif kind in ("Schedule", "ScheduleV2"):
            expression = properties.get("ScheduleExpression") or properties["Schedule"]  # V2 or Schedule
            period = rate_seconds(expression)
            enabled = (
                properties.get("Enabled", True) not in (False, "false")
                and properties.get("State", "ENABLED") == "ENABLED"
            )
            if period is None:
                self.template.warn(f"{spec.logical_id}.{event_name}: only rate() schedules run locally")
                return
            if not enabled:
                return
            target = self._schedule(spec, event_name, kind, properties, period / self.schedule_scale)
            description = f"{kind} {expression} -> {spec.logical_id} (every {period / self.schedule_scale:g} s)"
        else:
            if kind != "HttpApi":
                self.template.warn(f"{spec.logical_id}.{event_name}: {kind} events are not emulated")
            return
        self.sources.append(description)
        self._threads.append(threading.Thread(target=target, name=f"{spec.logical_id}.{event_name}", daemon=True))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop polling and scheduling; an invocation under way ends as the runtime stops."""
        self._stopping.set()

    def join(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(deadline - time.monotonic(), 0))

    # ------------------------------------------------------------------------------- queues

    def _receive(self, url: str, count: int, wait: int) -> list[dict[str, Any]]:
        try:
            response = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(count, 10),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as exc:  # the backend is going away, or the queue is gone
            if not self._stopping.is_set():
                print(f"triggers | receive from {url} failed: {exc}", file=sys.stderr, flush=True)
                self._stopping.wait(1)
            return []
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _delete(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages[start : start + 10])
            ]
            with contextlib.suppress(Exception):
                self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    def _sqs_poller(self, spec: FunctionSpec, arn: str, properties: dict[str, Any]) -> Callable[[], None]:
        url = self.template.queue_url_for(arn.rsplit(":", 1)[-1])
        batch_size = int(properties.get("BatchSize", 10))
        window = float(properties.get("MaximumBatchingWindowInSeconds", 0))
        report_failures = "ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or [])

        def poll() -> None:
            while not self._stopping.is_set():
                batch = self._receive(url, batch_size, POLL_WAIT_SECONDS)
                window_ends = time.monotonic() + window
                while batch and len(batch) < batch_size and time.monotonic() < window_ends:
                    batch += self._receive(url, batch_size - len(batch), 0) or []
                    if len(batch) < batch_size:
                        self._stopping.wait(min(0.1, max(window_ends - time.monotonic(), 0)))
                if not batch or self._stopping.is_set():
                    continue
                records = [sqs_record(message, arn, self.template.region) for message in batch]
                invocation = self.invoke(spec.logical_id, {"Records": records})
                failed = failed_message_ids(invocation, [message["MessageId"] for message in batch], report_failures)
                self._delete(url, [message for message in batch if message["MessageId"] not in failed])

        return poll

    def _delivery_poller(
        self, spec: FunctionSpec, queue: str, kind: str, properties: dict[str, Any]
    ) -> Callable[[], None]:
        url = self.template.queue_url_for(queue)

        def event_of(body: str) -> Any:
            event = json.loads(body)
            if kind == "S3" or "InputTransformer" in properties:
                return event
            if "Input" in properties:
                return json.loads(properties["Input"])
            if "InputPath" in properties:
                return _input_path(event, properties["InputPath"])
            return event

        def poll() -> None:
            while not self._stopping.is_set():
                for message in self._receive(url, 10, POLL_WAIT_SECONDS):
                    event = event_of(message["Body"])
                    if not (isinstance(event, dict) and event.get("Event") == "s3:TestEvent"):
                        self.invoke(spec.logical_id, event)  # asynchronous: the outcome is only logged
                    self._delete(url, [message])

        return poll

    # ------------------------------------------------------------------------------- schedules

    def _schedule(
        self, spec: FunctionSpec, event_name: str, kind: str, properties: dict[str, Any], period: float
    ) -> Callable[[], None]:
        region = self.template.region
        if kind == "ScheduleV2":
            name = properties.get("Name") or f"{spec.logical_id}{event_name}"
            arn = f"arn:{PARTITION}:scheduler:{region}:{ACCOUNT_ID}:schedule/default/{name}"
            source = "aws.scheduler"
        else:
            name = properties.get("Name") or delivery_queue_name(spec.logical_id, event_name)
            arn = f"arn:{PARTITION}:events:{region}:{ACCOUNT_ID}:rule/{name}"
            source = "aws.events"

        def run() -> None:
            # EventBridge Scheduler starts a rate schedule without StartDate at once; a rule after a period.
            next_at = time.monotonic() + (0 if kind == "ScheduleV2" else period)
            while not self._stopping.wait(max(next_at - time.monotonic(), 0)):
                event = (
                    json.loads(properties["Input"]) if "Input" in properties else scheduled_event(arn, region, source)
                )
                self.invoke(spec.logical_id, event)
                next_at += period
                while next_at <= time.monotonic():  # a run that outlasted the period skips the missed ticks
                    next_at += period

        return run
