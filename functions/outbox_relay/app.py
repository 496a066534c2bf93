"""Publishes committed outbox events to the bus, polling until shortly before the timeout.

Started every minute by the schedule; with one reserved slot, runs never overlap. A round that
failed (the bus refused events, or DynamoDB the reads) is followed by a longer wait, growing with
each failed round in a row (the service's backoff rule), so that a failing bus is asked less often
while it fails and again within seconds once it is back.
"""

import time

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.backoff import Backoff
from inventory.errors import TemporarilyUnavailable
from inventory.observability import logger, metrics
from inventory.settings import OutboxRelaySettings, settings_of
from inventory.wiring import outbox_relay

STOP_BEFORE_TIMEOUT_MS = 5_000
BACKOFF_CAP_SECONDS = 15.0  # the longest extra wait after failed rounds: a quarter of a run
# Read at cold start: a variable the template does not give fails the function's start, not a request.
SETTINGS = settings_of(OutboxRelaySettings)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    relay = outbox_relay(SETTINGS)
    pause = SETTINGS.relay_poll_interval_ms / 1000
    backoff = Backoff(base=pause, cap=BACKOFF_CAP_SECONDS)
    published = failed = rounds = 0
    # None: no round read the outbox. Then no lag figure goes out at all, and the alarm, which
    # takes missing figures as breaching, fires as it does when the relay does not run.
    worst_lag: float | None = None
    while context.get_remaining_time_in_millis() > STOP_BEFORE_TIMEOUT_MS:
        rounds += 1
        try:
            result = relay.run_once()
        except TemporarilyUnavailable as error:
            wait = pause + backoff.failed()
            logger.warning("relay round failed; retrying", extra={"reason": error.message, "wait_seconds": wait})
        else:
            published += result.published
            failed += result.failed
            lag = result.oldest_pending_seconds
            worst_lag = lag if worst_lag is None else max(worst_lag, lag)
            # Every round's figure, also of a round whose events the bus refused: the alarm reads the highest.
            metrics.add_metric(name="OutboxLagSeconds", unit=MetricUnit.Seconds, value=lag)
            if result.failed:
                wait = pause + backoff.failed()
                logger.warning(
                    "the bus did not take every event; retrying",
                    extra={
                        "published": result.published,
                        "failed": result.failed,
                        "lag_seconds": lag,
                        "wait_seconds": wait,
                    },
                )
            else:
                backoff.succeeded()
                wait = 0.0 if result.published else pause  # a backlog goes on at once
        time.sleep(max(0.0, min(wait, (context.get_remaining_time_in_millis() - STOP_BEFORE_TIMEOUT_MS) / 1000)))
    metrics.add_metric(name="OutboxEventsPublished", unit=MetricUnit.Count, value=published)
    metrics.add_metric(name="OutboxPublishFailures", unit=MetricUnit.Count, value=failed)
    logger.info(
        "relay run ended", extra={"rounds": rounds, "published": published, "failed": failed, "lag_seconds": worst_lag}
    )
    return {"published": published, "failed": failed, "rounds": rounds, "lag_seconds": worst_lag}
