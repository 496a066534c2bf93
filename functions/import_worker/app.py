"""Runs stock imports: messages from the API (and from itself, handing work on), and files
dropped in the import bucket under imports/<location_id>/<kind>/<import_id>.<format>."""

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.errors import ImportInProgress, InventoryError, TemporarilyUnavailable
from inventory.observability import logger, metrics
from inventory.settings import get_settings
from inventory.wiring import dead_letters, import_service

processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
    body: dict[str, Any] = json.loads(record.body)
    service = import_service()
    try:
        if "Records" in body:  # files dropped in the bucket
            for s3 in (r["s3"] for r in body["Records"] if "s3" in r):
                key = unquote_plus(s3["object"]["key"])
                service.file_dropped(s3["bucket"]["name"], key)
        elif "import_id" in body:
            status = service.run(body["location_id"], body["import_id"], lambda_context.get_remaining_time_in_millis)
            logger.info("import advanced", extra={"import_id": body["import_id"], "status": status.value})
        else:
            logger.info("message ignored", extra={"keys": sorted(body)})  # e.g. S3's test event
    except InventoryError as error:
        if isinstance(error, TemporarilyUnavailable | ImportInProgress):
            give_up(record, body, error.message)
            raise  # retried by the queue, and dead-lettered by its redrive policy if it never succeeds
        # Can never succeed: to the dead-letter queue with its reason, and acknowledged.
        logger.warning("record dead-lettered", extra={"code": error.code, "reason": error.message})
        metrics.add_metric(name="ImportRecordsDeadLettered", unit=MetricUnit.Count, value=1)
        dead_letters().send({"reason": {"code": error.code, "message": error.message}, "record": body})
    except Exception as error:
        give_up(record, body, f"{type(error).__name__}: {error}")
        raise


def give_up(record: SQSRecord, body: dict[str, Any], reason: str) -> None:
    """On the queue's last delivery of an import step, fail the import visibly rather than leave
    the location claimed by an import that nothing will ever run again."""
    if "import_id" not in body or int(record.attributes.approximate_receive_count) < get_settings().import_max_receives:
        return
    logger.error("import abandoned", extra={"import_id": body["import_id"], "reason": reason})
    import_service().abandon(body["location_id"], body["import_id"], reason)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
