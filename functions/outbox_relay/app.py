"""Publishes committed outbox events to the bus, polling until shortly before the timeout.

Started every minute by the schedule; with one reserved slot, runs never overlap.
"""

import time

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.errors import TemporarilyUnavailable
from inventory.observability import logger, metrics
from inventory.settings import OutboxRelaySettings, settings_of
from inventory.wiring import outbox_relay

STOP_BEFORE_TIMEOUT_MS = 5_000
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(OutboxRelaySettings)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    relay = outbox_relay(SETTINGS)
    pause = SETTINGS.relay_poll_interval_ms / 1000
    published = failed = rounds = 0
    worst_lag = 0.0
    while context.get_remaining_time_in_millis() > STOP_BEFORE_TIMEOUT_MS:
        rounds += 1
        try:
            result = relay.run_once()
        except TemporarilyUnavailable as error:
            logger.warning("relay round failed; retrying", extra={"reason": error.message})
            time.sleep(pause)
            continue
        published += result.published
        failed += result.failed
        worst_lag = max(worst_lag, result.oldest_pending_seconds)
        if result.published == 0:
            time.sleep(pause)
    metrics.add_metric(name="OutboxEventsPublished", unit=MetricUnit.Count, value=published)
    metrics.add_metric(name="OutboxPublishFailures", unit=MetricUnit.Count, value=failed)
    metrics.add_metric(name="OutboxLagSeconds", unit=MetricUnit.Seconds, value=worst_lag)
    logger.info("relay run ended", extra={"rounds": rounds, "published": published, "failed": failed})
    return {"published": published, "failed": failed, "rounds": rounds}
