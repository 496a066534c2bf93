"""Runs stock imports: messages from the API (and from itself, handing work on), and files
dropped in the import bucket under imports/<location_id>/<kind>/<import_id>.<format>."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.batch import dead_letter, last_delivery, reason_of
from inventory.errors import ImportInProgress, InventoryError, TemporarilyUnavailable
from inventory.messages.import_work import FilesDropped, ImportStep, ImportWork, parse_import_work
from inventory.models import ImportStatus
from inventory.observability import logger, metrics
from inventory.settings import get_settings
from inventory.wiring import dead_letters, import_service

processor = BatchProcessor(event_type=EventType.SQS)
DEAD_LETTERED = "ImportRecordsDeadLettered"


def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
    work: ImportWork | None = None
    try:
        work = parse_import_work(record.body)
        if isinstance(work, FilesDropped):
            for bucket, key in work.files():
                import_service().file_dropped(bucket, key)
        elif isinstance(work, ImportStep):
            status = import_service().run(work.location_id, work.import_id, lambda_context.get_remaining_time_in_millis)
            logger.info("import advanced", extra={"import_id": work.import_id, "status": status.value})
        else:
            logger.info("S3 test event ignored")
    except InventoryError as error:
        if not isinstance(error, TemporarilyUnavailable | ImportInProgress):
            dead_letter(dead_letters(), record, reason_of(error), DEAD_LETTERED)  # can never succeed
            return
        retry_or_give_up(record, work, error)
    except Exception as error:
        retry_or_give_up(record, work, error)


def retry_or_give_up(record: SQSRecord, work: ImportWork | None, error: Exception) -> None:
    """Raise, so that the queue delivers the record again; on its last delivery, fail the import
    visibly (rather than leave the location claimed by an import that nothing will run again) and
    dead-letter the record with the reason."""
    if not last_delivery(record, get_settings().import_max_receives):
        raise error
    if isinstance(work, ImportStep):
        reason = reason_of(error).message
        if import_service().abandon(work.location_id, work.import_id, reason) is ImportStatus.COMPLETED:
            return  # it had ended, and the give-up finished the ending: nothing is lost
        logger.error("import abandoned", extra={"import_id": work.import_id, "reason": reason})
    dead_letter(dead_letters(), record, reason_of(error), DEAD_LETTERED)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
