"""What every SQS-fed handler does with a record it cannot apply.

A record that can never succeed (invalid, or refused by a rule) goes to the function's
dead-letter queue at once, with its reason, and is acknowledged. A record that failed for now
(throttled, unreachable, or a defect) is retried by the queue; on its last delivery it goes to the
dead-letter queue with the reason of that last failure rather than by the queue's redrive, which
would move it there without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from inventory.messages.dead_letters import DeadLetter, Reason
from inventory.observability import logger, metrics
from inventory.services.outcomes import Outcome

if TYPE_CHECKING:
    from inventory.ports import WorkQueue


def last_delivery(record: SQSRecord, max_receives: int) -> bool:
    return int(record.attributes.approximate_receive_count or 1) >= max_receives


def dead_letter(queue: WorkQueue, record: SQSRecord, reason: Reason, metric: str) -> None:
    """Send the record, as it came, with its reason; raises (and the record is retried) when the
    dead-letter queue cannot take it."""
    logger.warning("record dead-lettered", extra={"reason": reason.model_dump(), "message_id": record.message_id})
    queue.send(DeadLetter(reason=reason, body=record.body).model_dump())
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


def settle(
    record: SQSRecord,
    outcome: Outcome,
    *,
    dead_letters: WorkQueue,
    max_receives: int,
    metric: str,
) -> None:
    """The queue's answer for one record: return (acknowledged), or raise (delivered again).

    Applied: acknowledged. Refused for good: to the dead-letter queue at once. Failed for now:
    raised, and so retried; on its last delivery, to the dead-letter queue with the reason (the
    service, told it is the last delivery, has ended what the record had started)."""
    if outcome.error is None:
        return
    if not outcome.final and not last_delivery(record, max_receives):
        raise outcome.error
    dead_letter(dead_letters, record, outcome.reason, metric)
