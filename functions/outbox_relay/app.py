"""Publishes committed outbox events to the bus, polling until shortly before the timeout.

Started every minute by the schedule; with one reserved slot, runs never overlap. The rounds, and
the waits between them (longer after failed rounds), are the relay service's (`poll`).
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.observability import logger, metrics
from inventory.services.outbox import poll
from inventory.settings import settings_of
from inventory.settings.outbox_relay import OutboxRelaySettings
from inventory.wiring import outbox_relay

STOP_BEFORE_TIMEOUT_MS = 5_000
BACKOFF_CAP_SECONDS = 15.0  # the longest extra wait after failed rounds: a quarter of a run
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(OutboxRelaySettings)
outbox_relay(SETTINGS)  # built at cold start too; its clients are created at their first call


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    run = poll(
        outbox_relay(SETTINGS),
        context.get_remaining_time_in_millis,
        STOP_BEFORE_TIMEOUT_MS,
        SETTINGS.relay_poll_interval_ms / 1000,
        BACKOFF_CAP_SECONDS,
    )
    # Every round's lag, the alarm reading the highest. None at all when no round read the outbox:
    # the alarm takes missing figures as breaching, as when the relay does not run (0 would say that
    # nothing waits).
    for round_lag in run.lags:
        metrics.add_metric(name="OutboxLagSeconds", unit=MetricUnit.Seconds, value=round_lag)
    metrics.add_metric(name="OutboxEventsPublished", unit=MetricUnit.Count, value=run.published)
    metrics.add_metric(name="OutboxPublishFailures", unit=MetricUnit.Count, value=run.failed)
    lag = run.worst_lag_seconds
    logger.info(
        "relay run ended",
        extra={"rounds": run.rounds, "published": run.published, "failed": run.failed, "lag_seconds": lag},
    )
    return {"published": run.published, "failed": run.failed, "rounds": run.rounds, "lag_seconds": lag}
