"""Applies `Fulfillment Items Shipped` and `Fulfillment Items Handed Over` events from the bus
(through the shipment queue): each line leaves main stock once, whatever the redeliveries."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api.events import parse_shipment
from inventory.errors import InventoryError, TemporarilyUnavailable
from inventory.observability import logger, metrics
from inventory.wiring import shipment_dead_letters, shipment_service

processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord) -> None:
    try:
        shipment = parse_shipment(record.body)
        applied = shipment_service().apply(shipment)
    except TemporarilyUnavailable:
        raise  # retried by the queue; its redrive policy dead-letters what never succeeds
    except InventoryError as error:
        # Can never succeed (invalid, unknown location, the same event id with another body):
        # to the dead-letter queue with its reason, acknowledged, without holding back the batch.
        reason: dict[str, Any] = {"code": error.code, "message": error.message, "details": error.details}
        logger.warning("shipment record dead-lettered", extra={"reason": reason, "message_id": record.message_id})
        metrics.add_metric(name="ShipmentRecordsDeadLettered", unit=MetricUnit.Count, value=1)
        shipment_dead_letters().send({"reason": reason, "body": record.body})
        return
    metrics.add_metric(name="ShipmentLinesApplied", unit=MetricUnit.Count, value=applied.lines)
    logger.info(
        "shipment applied",
        extra={"event_id": shipment.event_id, "lines": applied.lines, "repeated": applied.repeated},
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
