"""Releases the API allocations left pending by a request that stopped half-way and was never
retried: they would hold units that no order ships. Started every five minutes by the schedule."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.observability import logger, metrics
from inventory.settings import TableSettings, settings_of
from inventory.wiring import allocation_service

BATCH = 100  # released per call; the run goes on while calls come back full and time is left
STOP_BEFORE_TIMEOUT_MS = 10_000
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(TableSettings)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    released = 0
    while context.get_remaining_time_in_millis() > STOP_BEFORE_TIMEOUT_MS:
        batch = allocation_service(SETTINGS).release_abandoned(BATCH)
        for allocation in batch:
            logger.warning(
                "abandoned allocation released",
                extra={
                    "location_id": allocation.location_id,
                    "allocation_id": allocation.allocation_id,
                    "order_id": allocation.order_id,
                    "created_at": allocation.created_at.isoformat(),
                },
            )
        released += len(batch)
        if len(batch) < BATCH:
            break
    metrics.add_metric(name="AbandonedAllocationsReleased", unit=MetricUnit.Count, value=released)
    return {"released": released}
