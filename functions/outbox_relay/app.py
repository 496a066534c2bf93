"""Publishes committed outbox events to the bus, polling until shortly before the timeout.

Started every minute by the schedule; with one reserved slot, runs never overlap.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.observability import logger, metrics
from inventory.settings import OutboxRelaySettings, settings_of
from inventory.wiring import outbox_relay

STOP_BEFORE_TIMEOUT_MS = 5_000
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(OutboxRelaySettings)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    run = outbox_relay(SETTINGS).run(
        context.get_remaining_time_in_millis, STOP_BEFORE_TIMEOUT_MS, SETTINGS.relay_poll_interval_ms / 1000
    )
    metrics.add_metric(name="OutboxEventsPublished", unit=MetricUnit.Count, value=run.published)
    metrics.add_metric(name="OutboxPublishFailures", unit=MetricUnit.Count, value=run.failed)
    metrics.add_metric(name="OutboxLagSeconds", unit=MetricUnit.Seconds, value=run.worst_lag_seconds)
    logger.info("relay run ended", extra={"rounds": run.rounds, "published": run.published, "failed": run.failed})
    return {"published": run.published, "failed": run.failed, "rounds": run.rounds}
