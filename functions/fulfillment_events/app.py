"""Applies fulfilment's events from the bus (through the fulfilment queue): shipments and in-store
pickup handovers leave main stock and close allocations once per event line; allocations are
opened (or refused, with an `Allocation Refused` event) and released once per allocation id."""

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api.events import AllocationCreated, AllocationReleased, FulfillmentEvent, parse_fulfillment_event
from inventory.batch import dead_letter, last_delivery, reason_of
from inventory.errors import InventoryError, TemporarilyUnavailable
from inventory.observability import logger, metrics
from inventory.services.shipments import Shipment
from inventory.settings import get_settings
from inventory.wiring import allocation_service, fulfillment_dead_letters, shipment_service

# A batch whose every record failed is answered as such (the queue delivers them again), not as an
# error of the function: the queue's age and dead-letter alarms watch records that never succeed.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
CALLER = "fulfillment-events"
DEAD_LETTERED = "FulfillmentRecordsDeadLettered"
MIN_REMAINING_MS = 10_000  # the longest record (1,000 lines) takes a few seconds


@dataclass
class Batch:
    """The invocation running (one at a time per execution environment): its records, parsed once,
    and what it applied."""

    parsed: dict[str, FulfillmentEvent | Exception] = field(default_factory=dict)  # by message id
    shipments: int = 0
    lines: int = 0
    repeated: int = 0

    def start(self, records: list[dict[str, Any]]) -> None:
        self.parsed = {record["messageId"]: parse(record["body"]) for record in records}
        self.shipments = self.lines = self.repeated = 0


batch = Batch()


def parse(body: str) -> FulfillmentEvent | Exception:
    """The record's event, or what parsing it raised: raised again when the record is handled, so
    that it fails that record alone (to the dead-letter queue when it can never succeed)."""
    try:
        return parse_fulfillment_event(body)
    except Exception as error:  # kept for its record, not swallowed
        return error


def read_ahead() -> None:
    """One read for what the batch's shipment lines would each read; only a saving, so whatever it
    fails with leaves each line to read for itself (and fail, if it must, with its own record)."""
    try:
        shipment_service().read_ahead([event for event in batch.parsed.values() if isinstance(event, Shipment)])
    except Exception:  # logged; the lines read again
        logger.warning("reading ahead failed: each line reads for itself", exc_info=True)


def apply(event: FulfillmentEvent) -> None:
    if isinstance(event, AllocationCreated):
        view, _ = allocation_service().create(event.location_id, event.request, CALLER, from_bus=True)
        logger.info(
            "allocation created",
            extra={
                "event_id": event.event_id,
                "allocation_id": event.request.allocation_id,
                "status": view.allocation.status,
            },
        )
    elif isinstance(event, AllocationReleased):
        allocation_service().release(event.location_id, event.allocation_id, CALLER, from_bus=True)
        logger.info("allocation released", extra={"event_id": event.event_id, "allocation_id": event.allocation_id})
    else:
        applied = shipment_service().apply(event)
        batch.lines += applied.lines
        batch.repeated += applied.repeated
        batch.shipments += 1
        # Per record at DEBUG (the ledger keeps what each event did); the batch has one INFO line.
        logger.debug(
            "shipment applied",
            extra={"event_id": event.event_id, "lines": applied.lines, "repeated": applied.repeated},
        )


def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
    try:
        if lambda_context.get_remaining_time_in_millis() < MIN_REMAINING_MS:
            # Not started, rather than cut off by the timeout with the whole batch: the queue delivers
            # it again (each line is applied once, so a cut-off record would be safe too, only slower).
            raise TimeoutError("too little time left in this invocation to start the record")
        event = batch.parsed.pop(record.message_id, None) or parse(record.body)
        if isinstance(event, Exception):
            raise event
        apply(event)
    except InventoryError as error:
        if isinstance(error, TemporarilyUnavailable):
            retry_or_dead_letter(record, error)
        else:
            # Can never succeed (invalid, unknown location, an id reused with another body): to the
            # dead-letter queue with its reason, acknowledged, without holding back the batch.
            dead_letter(fulfillment_dead_letters(), record, reason_of(error), DEAD_LETTERED)
    except Exception as error:
        retry_or_dead_letter(record, error)


def retry_or_dead_letter(record: SQSRecord, error: Exception) -> None:
    """Raise, so that the queue delivers the record again; on its last delivery, dead-letter it
    with the reason (the queue's redrive would move it there without one)."""
    if not last_delivery(record, get_settings().fulfillment_max_receives):
        raise error
    dead_letter(fulfillment_dead_letters(), record, reason_of(error), DEAD_LETTERED)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    batch.start(event.get("Records", []))
    read_ahead()
    response = process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    metrics.add_metric(name="ShipmentLinesApplied", unit=MetricUnit.Count, value=batch.lines)
    logger.info(
        "batch done",
        extra={
            "records": len(event.get("Records", [])),
            "failed": len(response.get("batchItemFailures", [])),
            "shipments": batch.shipments,
            "lines_applied": batch.lines,
            "lines_repeated": batch.repeated,
        },
    )
    return response
