"""The OpenAPI document of the whole HTTP API, generated from the routers' models."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from inventory.api import (
    allocations,
    availability_exports,
    cycle_counts,
    locations,
    master_switch,
    safety_stock,
    stock,
    stock_imports,
    stock_locations,
    transactions,
)
from inventory.api.http import make_resolver

ROUTERS = (
    locations.router,
    master_switch.router,
    stock_locations.router,
    stock_imports.router,
    stock.router,
    safety_stock.router,
    allocations.router,
    transactions.router,
    cycle_counts.router,
    availability_exports.router,
)


def openapi_document() -> str:
    app: APIGatewayHttpResolver = make_resolver(*ROUTERS)
    return app.get_openapi_json_schema(
        title="Inventory master service",
        version="1",
        description=(
            "Stock on hand, availability and the inventory-master switch per store and DC. Every route "
            "requires AWS IAM authorization (SigV4, service `execute-api`). Errors are "
            '`{"error": {"code", "message", "details"}}` with a stable code.'
        ),
        security_schemes={"sigv4": {"type": "apiKey", "name": "Authorization", "in": "header"}},  # type: ignore[dict-item]
        security=[{"sigv4": []}],
    )
