"""POST/GET /locations/{location_id}/cycle-counts, GET and DELETE .../{count_id}, POST .../{count_id}/results."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api import cycle_counts
from inventory.api.http import make_resolver
from inventory.observability import logger
from inventory.settings import TableSettings, settings_of

# Read at cold start: a variable the template does not give fails the function's start, not a request.
settings_of(TableSettings)  # the routes take it from there
cycle_counts.cycle_count_service()  # built at cold start too; its client is created at its first call
app = make_resolver(cycle_counts.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
