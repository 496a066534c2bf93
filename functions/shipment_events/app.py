"""Applies shipment events from the bus, and the allocation events that share their queue (the
fulfilment queue): the batch is parsed once, applied by one call of the shipment event service, and
each record's outcome answered."""

from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.batch import settle
from inventory.messages.shipment_events import QueuedEvent, parse_queued_event
from inventory.observability import logger, metrics
from inventory.services.outcomes import Outcome
from inventory.settings import settings_of
from inventory.settings.shipment_events import ShipmentEventsSettings
from inventory.wiring import shipment_event_service, shipment_events_dead_letters

# A batch whose every record failed is answered as such (the queue delivers them again), not as an
# error of the function: the queue's age and dead-letter alarms watch records that never succeed.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
DEAD_LETTERED = "FulfillmentRecordsDeadLettered"
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(ShipmentEventsSettings)
# Built at cold start too; their clients are created at their first call.
shipment_event_service(SETTINGS)
shipment_events_dead_letters(SETTINGS)


def parse(body: str) -> QueuedEvent | Exception:
    """The record's event, or what parsing it raised: that record's outcome alone (InvalidInput,
    with its field paths: dead-lettered and acknowledged at once).

    The project parses the records itself rather than through `BatchProcessor(model=...)`: that
    marks a record that fails its model as a failure of the batch, so the queue would deliver it
    again and again and finally move it to the dead-letter queue without its reason."""
    try:
        return parse_queued_event(body)
    except Exception as error:  # kept for its record, not swallowed
        return error


def answer(outcomes: dict[str, Outcome], record: SQSRecord) -> None:
    settle(
        record,
        outcomes[record.message_id],
        dead_letters=shipment_events_dead_letters(SETTINGS),
        max_receives=SETTINGS.fulfillment_max_receives,
        metric=DEAD_LETTERED,
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    parsed = {record["messageId"]: parse(record["body"]) for record in records}
    done = shipment_event_service(SETTINGS).apply(parsed, context.get_remaining_time_in_millis)
    response = process_partial_response(
        event=event, record_handler=partial(answer, done.outcomes), processor=processor, context=context
    )
    metrics.add_metric(name="ShipmentLinesApplied", unit=MetricUnit.Count, value=done.lines)
    logger.info(
        "batch done",
        extra={
            "records": len(records),
            "failed": len(response.get("batchItemFailures", [])),
            "shipments": done.shipments,
            "lines_applied": done.lines,
            "lines_repeated": done.repeated,
        },
    )
    return response
