"""PUT /locations/{location_id}/safety-stock."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api import safety_stock
from inventory.api.http import make_resolver
from inventory.observability import logger
from inventory.settings import TableSettings, settings_of

# Read at cold start: a variable the template does not give fails the function's start, not a request.
settings_of(TableSettings)  # the routes take it from there
safety_stock.safety_stock_service()  # built at cold start too; its client is created at its first call
app = make_resolver(safety_stock.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
