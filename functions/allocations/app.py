"""POST /locations/{location_id}/allocations, GET and DELETE .../allocations/{allocation_id}."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api import allocations
from inventory.api.http import make_resolver
from inventory.observability import logger

app = make_resolver(allocations.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
