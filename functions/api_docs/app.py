"""GET /openapi.json, and the contract's 404 for every route the API does not have ($default)."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from inventory.api.docs import openapi_document
from inventory.api.http import make_resolver
from inventory.observability import logger

app = make_resolver()
DOCUMENT = openapi_document()


@app.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=DOCUMENT)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
