"""The availability exports' worker: the export queue's messages (an export's fan-out, a location's
unit of work) and the schedule's delta export of every enabled location."""

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.batch import last_delivery, settle
from inventory.messages.export_work import ExportWork, parse_export_work
from inventory.observability import logger, metrics
from inventory.settings import settings_of
from inventory.settings.availability_exports import AvailabilityExportWorkerSettings
from inventory.wiring import export_dead_letters, export_service, export_worker

processor = BatchProcessor(event_type=EventType.SQS)
DEAD_LETTERED = "ExportRecordsDeadLettered"
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(AvailabilityExportWorkerSettings)
# Built at cold start too; their clients are created at their first call.
export_worker(SETTINGS)
export_dead_letters(SETTINGS)


def parse(body: str) -> ExportWork | Exception:
    """The message, or what parsing it raised (dead-lettered with its reason, as the import worker's)."""
    try:
        return parse_export_work(body)
    except Exception as error:  # kept for its record, not swallowed
        return error


def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
    outcome = export_worker(SETTINGS).process(
        parse(record.body),
        lambda_context.get_remaining_time_in_millis,
        last_delivery=last_delivery(record, SETTINGS.export_max_receives),
    )
    settle(
        record,
        outcome,
        dead_letters=export_dead_letters(SETTINGS),
        max_receives=SETTINGS.export_max_receives,
        metric=DEAD_LETTERED,
    )


def scheduled_at(event: dict[str, Any]) -> datetime | None:
    """The time the schedule gives its run (None: the service's clock)."""
    try:
        return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    if "Records" in event:
        return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    export = export_service(SETTINGS).scheduled(scheduled_at(event))
    return {"export_id": export.export.export_id if export else None}
