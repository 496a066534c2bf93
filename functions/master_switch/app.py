"""GET /locations/{location_id}/inventory-master/readiness and PUT .../inventory-master."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api import master_switch
from inventory.api.http import make_resolver
from inventory.observability import logger
from inventory.settings import settings_of
from inventory.settings.master_switch import MasterSwitchSettings

# Read at cold start: a variable the template does not give fails the function's start, not a request.
settings_of(MasterSwitchSettings)  # the routes take it from there
master_switch.master_switch_service()  # built at cold start too; its client is created at its first call
app = make_resolver(master_switch.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
