"""What every HTTP function shares: the resolver, the bodies' bases and the error contract, size
limits, identity."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime
from re import Match
from typing import Annotated, Any
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from inventory.errors import Conflict, InvalidInput, InventoryError, NotFound, PayloadTooLarge, TemporarilyUnavailable
from inventory.models import iso
from inventory.observability import logger
from inventory.types import LOCATION_ID_PATTERN

MAX_BODY_BYTES = 5 * 1024 * 1024
# Every list takes `limit` (1 to 1,000, 100 by default) and `cursor` (the page before's `next_cursor`).
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 2048  # characters: every cursor a list returns is far shorter
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PageCursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
# No field takes a number of more digits (2^63 has 19); Python's own limit (4,300 digits, an
# interpreter setting) raises an error that is not a JSON error, and parsing up to it is slow.
MAX_NUMBER_DIGITS = 40


# ---------------------------------------------------------------- the bodies every route shares
# (each route's own bodies, SPEC.md section 4, are in its module: a function builds only its own)
UtcTime = Annotated[datetime, PlainSerializer(iso, return_type=str)]
# The path parameter of every route under /locations/{location_id}.
LocationId = Annotated[str, Path(pattern=LOCATION_ID_PATTERN, description="The store's or DC's id")]


class Request(BaseModel):
    """A request body: unknown fields are refused, and no type is coerced (StrictX fields)."""

    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorInfo(Reply):
    code: str = Field(examples=["validation_error"])
    message: str
    details: list[dict[str, Any]] = []


class ErrorBody(Reply):
    error: ErrorInfo


# ---------------------------------------------------------------- errors
STATUS_BY_ERROR: dict[type[InventoryError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    PayloadTooLarge: 413,
    Conflict: 409,
    TemporarilyUnavailable: 503,
}


def status_of(error: InventoryError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_response(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> Response[Any]:
    body = ErrorBody.model_validate({"error": {"code": code, "message": message, "details": details or []}})
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(status_code=status, content_type="application/json", body=body.model_dump_json(), headers=headers)


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'items', 3, 'quantity') -> 'body.items[3].quantity'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for problem in error.errors():
        location = problem.get("loc", ())
        if problem.get("type") == "json_invalid":
            location = location[:1]  # the position in the text is not a field
        details.append(
            {
                "field": field_path(location),
                "code": problem.get("type", "invalid"),
                "message": problem.get("msg", "invalid value"),
            }
        )
    return details


def answers(model: type[BaseModel], *statuses: int, description: str = "OK") -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for a route's successful answers, each with its body's model. (Powertools
    documents the return type only when a route names no `responses` of its own.)"""
    return {
        status: {"description": description, "content": {"application/json": {"model": model}}}
        for status in statuses or (200,)
    }


def errors_for(code: int, *extra: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for the error statuses a route can answer."""
    described = {
        404: "Not found",
        409: "Refused by a rule",
        413: "Body over 5 MB",
        422: "Invalid input",
        503: "Retry later",
    }
    statuses = {code, *extra, 422, 413, 503}
    return {
        status: {"description": described[status], "content": {"application/json": {"model": ErrorBody}}}
        for status in sorted(statuses)
    }


def body_bytes(event: Mapping[str, Any]) -> bytes:
    """The body as the client sent it. API Gateway base64-encodes a body that is not valid UTF-8
    text (or not of a text type); InvalidInput when that encoding is broken."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode()
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as error:
        raise InvalidInput("the body is not valid base64") from error


def _refused_before_routing(event: Mapping[str, Any]) -> Response[Any] | None:
    """What is refused before anything else looks at the body (validation included): a body
    over the limit, and one that is not UTF-8 text (JSON must be)."""
    try:
        body = body_bytes(event)
    except InvalidInput as error:
        return error_response(
            422, InvalidInput.code, "the request is not valid", [_body_problem("invalid_base64", error.message)]
        )
    if len(body) > MAX_BODY_BYTES:
        message = f"the body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}"
        return error_response(413, PayloadTooLarge.code, message)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"the body is not UTF-8 text (byte {error.start})"
        return error_response(
            422, InvalidInput.code, "the request is not valid", [_body_problem("invalid_utf8", message)]
        )
    return None


def _body_problem(code: str, message: str) -> dict[str, str]:
    return {"field": "body", "code": code, "message": message}


# The key of the caller's identity in every log line of a request, as in the API's access log
# (template.yaml, HttpApi.AccessLogSettings), so one request can be followed from the API to the function.
CALLER_LOG_KEY = "caller"


class _NotJson(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _one_value_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _NotJson("duplicate_key", f"the key {twice[:64]!r} appears twice in one object")
    return body


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_DIGITS + 1:
        raise _NotJson("number_too_long", f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return float(text) if any(c in text for c in ".eE") else int(text)


def _not_json(constant: str) -> None:
    raise _NotJson("json_invalid", f"{constant} is not JSON")


def parse_json_body(text: str) -> Any:
    """A request body as JSON, strictly: an object with the same key twice is refused (SPEC.md
    section 4), and so are NaN and Infinity, numbers longer than any field takes, and nesting too
    deep to read; each is a 422 naming the body, never a crash."""
    try:
        return json.loads(
            text, object_pairs_hook=_one_value_per_key, parse_int=_number, parse_float=_number, parse_constant=_not_json
        )
    except json.JSONDecodeError as error:
        code, message = "json_invalid", f"{error.msg} at line {error.lineno} column {error.colno}"
    except _NotJson as error:
        code, message = error.code, error.message
    except RecursionError:
        code, message = "json_too_deep", "the JSON is nested too deeply"
    raise RequestValidationError([{"type": code, "loc": ("body",), "msg": message}])


class _JsonBodies(OpenAPIRequestValidationMiddleware):
    """Every body is read as JSON, whatever its Content-Type says. (Powertools reads form and
    multipart bodies by their Content-Type, and fails with a 500 on any other: this API takes
    JSON only, and a body that is not JSON is a 422 like any other.)"""

    def _get_body(self, app: Any) -> Any:
        return self._parse_json_data(app)


_ROUTE_PARAMETER = re.compile(r"\{(\w+)\+?\}")


def _as_routed(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with its path rebuilt from the route API Gateway matched and the path parameters
    it decoded, each percent-encoded once again.

    API Gateway decodes the path (`%2F` included) before it routes, and sends it decoded in
    `rawPath`. Routing that path again would split a product id `A/P` (a greedy `{product_id+}`)
    in two, and miss one holding a `#` or any character outside the router's segment pattern.
    Each value is decoded once more when the route receives it (`_convert_matches_into_route_keys`),
    so a route gets exactly what API Gateway matched. Without a route key (an event made by hand)
    the path is routed as it is, and its segments are decoded the same way."""
    parameters = event.get("pathParameters") or {}
    _, _, template = str(event.get("routeKey") or "").partition(" ")
    if not parameters or not template.startswith("/"):
        return event
    try:
        path = _ROUTE_PARAMETER.sub(lambda found: quote(str(parameters[found.group(1)]), safe=""), template)
    except KeyError:  # a route key that does not name these parameters: route the path as sent
        return event
    stage = str((event.get("requestContext") or {}).get("stage") or "$default")
    return {**event, "rawPath": path if stage == "$default" else f"/{stage}{path}"}


class InventoryResolver(APIGatewayHttpResolver):
    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        logger.append_keys(**{CALLER_LOG_KEY: caller_of(event)})
        refused = _refused_before_routing(event)
        if refused is not None:
            return {
                "statusCode": refused.status_code,
                "headers": {"Content-Type": "application/json"},
                "body": refused.body,
                "isBase64Encoded": False,
            }
        return super().resolve(dict(_as_routed(event)), context)

    def _convert_matches_into_route_keys(self, match: Match[str]) -> dict[str, str]:
        """Path parameters as the client meant them: each segment percent-decoded, once."""
        return {name: unquote(value) for name, value in match.groupdict().items()}


def caller_of(event: Mapping[str, Any]) -> str:
    """The IAM principal API Gateway authenticated (recorded on the switch and on transactions)."""
    iam = (event.get("requestContext") or {}).get("authorizer", {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("callerId") or "unknown")


def caller_identity(router: Router | APIGatewayHttpResolver) -> str:
    return caller_of(router.current_event.raw_event)


def make_resolver(*routers: Router) -> InventoryResolver:
    app = InventoryResolver(enable_validation=True, json_body_deserializer=parse_json_body)
    # Powertools adds its request validation to every route unless the resolver has one already.
    app._request_validation_middleware = _JsonBodies()

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[Any]:
        return error_response(422, "validation_error", "the request is not valid", _validation_details(error))

    @app.exception_handler(InventoryError)
    def _refused(error: InventoryError) -> Response[Any]:
        status = status_of(error)
        if status >= 500:
            logger.warning("request failed for now", extra={"code": error.code, "reason": error.message})
        return error_response(status, error.code, error.message, error.details)

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return error_response(404, NotFound.code, f"no route for {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def _crashed(error: Exception) -> Response[Any]:
        logger.exception("unexpected error")
        return error_response(500, "internal_error", "the request failed; it is safe to retry")

    for router in routers:
        app.include_router(router)
    return app
