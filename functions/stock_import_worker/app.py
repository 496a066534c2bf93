"""The stock import's worker: runs stock imports, from messages of the API (and of itself, handing
work on) and from files dropped in the import bucket under
imports/<location_id>/<kind>/<import_id>.<format>."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.batch import last_delivery, settle
from inventory.messages.import_work import ImportWork, parse_import_work
from inventory.observability import logger, metrics
from inventory.settings import settings_of
from inventory.settings.stock_import_worker import StockImportWorkerSettings
from inventory.wiring import stock_import_dead_letters, stock_import_worker

processor = BatchProcessor(event_type=EventType.SQS)
DEAD_LETTERED = "ImportRecordsDeadLettered"
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(StockImportWorkerSettings)
# Built at cold start too; their clients are created at their first call.
stock_import_worker(SETTINGS)
stock_import_dead_letters(SETTINGS)


def parse(body: str) -> ImportWork | Exception:
    """The message, or what parsing it raised (InvalidInput, with its field paths: dead-lettered and
    acknowledged at once). Parsed here rather than by `BatchProcessor(model=...)`, which would mark
    a message that fails its model as failed, to be delivered again until the queue moves it to the
    dead-letter queue without its reason."""
    try:
        return parse_import_work(body)
    except Exception as error:  # kept for its record, not swallowed
        return error


def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
    outcome = stock_import_worker(SETTINGS).process(
        parse(record.body),
        lambda_context.get_remaining_time_in_millis,
        last_delivery=last_delivery(record, SETTINGS.import_max_receives),
    )
    settle(
        record,
        outcome,
        dead_letters=stock_import_dead_letters(SETTINGS),
        max_receives=SETTINGS.import_max_receives,
        metric=DEAD_LETTERED,
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
