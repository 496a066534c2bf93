"""POST /availability-exports, GET /availability-exports and GET /availability-exports/{export_id}."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api import availability_exports
from inventory.api.http import make_resolver
from inventory.observability import logger
from inventory.settings import settings_of
from inventory.settings.availability_exports import AvailabilityExportsSettings

# Read at cold start: a variable the template does not give fails the function's start, not a request.
settings_of(AvailabilityExportsSettings)  # the routes take it from there
availability_exports.export_service()  # built at cold start too; its clients are created at their first call
app = make_resolver(availability_exports.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
