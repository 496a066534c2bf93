"""GET /openapi.json documents every route the template routes to a function, with its errors."""

from __future__ import annotations

import json
import re

from tests.conftest import FakeContext, http_event, load_handler
from tests.unit.test_template import FUNCTIONS


def template_routes() -> set[tuple[str, str]]:
    """(method, path) of every route, a greedy `{name+}` written as OpenAPI writes it: `{name}`."""
    routes = set()
    for function in FUNCTIONS.values():
        for event in function["Properties"].get("Events", {}).values():
            props = event["Properties"]
            if event["Type"] == "HttpApi" and props["Path"] not in {"$default", "/openapi.json"}:
                routes.add((props["Method"].lower(), re.sub(r"\{(\w+)\+\}", r"{\1}", props["Path"])))
    return routes


def test_the_document_lists_exactly_the_routes_of_the_template_with_their_errors() -> None:
    handler = load_handler("api_docs")

    response = handler.lambda_handler(http_event("GET", "/openapi.json"), FakeContext())

    assert response["statusCode"] == 200
    document = json.loads(response["body"])
    assert document["openapi"].startswith("3.")
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == template_routes()
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert {"422", "413", "503"} <= set(op["responses"]), (method, path)
            error_schema = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert error_schema == {"$ref": "#/components/schemas/ErrorBody"}
            if re.search(r"\{location_id\}", path) and (method, path) != ("put", "/locations/{location_id}"):
                assert "404" in op["responses"], (method, path)
    assert "409" in document["paths"]["/locations/{location_id}/inventory-master"]["put"]["responses"]


def test_every_route_documents_its_successful_answers_with_their_model() -> None:
    """Powertools documents a route's return type only when the route names no responses of its
    own; every route here does, so each used to document its errors and no answer at all."""
    document = json.loads(
        load_handler("api_docs").lambda_handler(http_event("GET", "/openapi.json"), FakeContext())["body"]
    )

    for path, ops in document["paths"].items():
        for method, op in ops.items():
            answers = {status: op["responses"][status] for status in op["responses"] if status.startswith("2")}
            assert answers, (method, path)
            for status, answer in answers.items():
                schema = answer["content"]["application/json"]["schema"]
                assert schema["$ref"].startswith("#/components/schemas/"), (method, path, status)
    creates = document["paths"]["/locations/{location_id}/allocations"]["post"]["responses"]
    assert {"200", "201"} <= set(creates)
