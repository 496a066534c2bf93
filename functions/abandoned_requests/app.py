"""Cleans up after requests that stopped half-way and were never repeated, every five minutes (the
schedule): releases the API allocations they left pending, which would hold units that no order
ships, and fails the imports whose start claimed a location but never handed the import to the
worker, which would keep the location claimed (every later import refused, and the switch); and
completes (or, short, undoes) the inventory transactions they left pending, and completes the
cycle counts whose results they left half-applied."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.observability import logger, metrics
from inventory.settings import TableSettings, settings_of
from inventory.wiring import abandoned_requests

STOP_BEFORE_TIMEOUT_MS = 10_000
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(TableSettings)
abandoned_requests(SETTINGS)  # built at cold start too; its client is created at its first call


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    swept = abandoned_requests(SETTINGS).sweep(lambda: context.get_remaining_time_in_millis() > STOP_BEFORE_TIMEOUT_MS)
    for allocation in swept.released:
        logger.warning(
            "abandoned allocation released",
            extra={
                "location_id": allocation.location_id,
                "allocation_id": allocation.allocation_id,
                "order_id": allocation.order_id,
                "created_at": allocation.created_at.isoformat(),
            },
        )
    for record in swept.failed_imports:
        logger.warning(
            "abandoned import start failed",
            extra={
                "location_id": record.location_id,
                "import_id": record.import_id,
                "claimed_at": record.accepted_at.isoformat(),
                "recorded": record.content_hash is not None,  # False: it stopped between its claim and its record
            },
        )
    for transaction in swept.ended_transactions:
        logger.warning(
            "abandoned inventory transaction completed",
            extra={
                "location_id": transaction.location_id,
                "transaction_id": transaction.transaction_id,
                "created_at": transaction.created_at.isoformat(),
            },
        )
    for count in swept.completed_counts:
        logger.warning(
            "abandoned cycle count completed",
            extra={"location_id": count.location_id, "count_id": count.count_id},
        )
    metrics.add_metric(name="AbandonedAllocationsReleased", unit=MetricUnit.Count, value=len(swept.released))
    metrics.add_metric(name="AbandonedCountsCompleted", unit=MetricUnit.Count, value=len(swept.completed_counts))
    metrics.add_metric(
        name="AbandonedTransactionsCompleted", unit=MetricUnit.Count, value=len(swept.ended_transactions)
    )
    metrics.add_metric(name="AbandonedImportsFailed", unit=MetricUnit.Count, value=len(swept.failed_imports))
    return {
        "released_allocations": len(swept.released),
        "failed_imports": len(swept.failed_imports),
        "completed_transactions": len(swept.ended_transactions),
        "completed_counts": len(swept.completed_counts),
    }
