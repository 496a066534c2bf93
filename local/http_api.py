"""The HTTP API on 127.0.0.1, routed and calling Lambda as API Gateway HTTP APIs do (payload 2.0).

Routes come from the functions' `HttpApi` events: the most specific route wins (literal segments
before `{param}` before `{param+}`, a method before ANY), and `$default` takes the rest. Every
route is IAM-authorized in the service; locally no signature is checked, but the caller's access
key is read from a SigV4 Authorization header for `requestContext.authorizer.iam`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.runtime import Invocation
from local.template import ACCOUNT_ID, HTTP_API_TYPES, IMPLICIT_HTTP_API, URL_SUFFIX, FunctionSpec, Template, text

HOST = "127.0.0.1"
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's limit for a request body
TEXT_MEDIA_TYPES = ("application/json", "application/xml", "application/javascript")
SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

Invoke = Callable[[str, Any], Invocation]


@dataclass(frozen=True)
class Route:
    method: str  # GET, PUT, ... or ANY
    path: str  # /locations/{location_id}, /files/{proxy+} or $default
    function: str  # the logical id of the function
    api_id: str
    iam: bool = True  # IAM-authorized: the event has requestContext.authorizer.iam
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    rank: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, names, ranks = "", [], []
        for segment in self.path.strip("/").split("/"):
            regex += "/"
            if segment.startswith("{") and segment.endswith("+}"):
                regex, rank = regex + "(.+)", 2
                names.append(segment[1:-2])
            elif segment.startswith("{") and segment.endswith("}"):
                regex, rank = regex + "([^/]+)", 1
                names.append(segment[1:-1])
            else:
                regex, rank = regex + re.escape(segment), 0
            ranks.append(rank)
        object.__setattr__(self, "_pattern", re.compile(regex, re.DOTALL))  # a decoded %0A is a character too
        object.__setattr__(self, "_names", tuple(names))
        object.__setattr__(self, "rank", (tuple(ranks), self.method == "ANY"))

    @property
    def key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self._pattern.fullmatch(path)
        return None if found is None else dict(zip(self._names, found.groups(), strict=True))


def routes_from(template: Template, functions: dict[str, FunctionSpec]) -> list[Route]:
    routes = []
    apis = template.of_type(*HTTP_API_TYPES)
    for spec in functions.values():
        for event in spec.events:
            if event.type != "HttpApi":
                continue
            properties = event.properties
            if text(properties.get("PayloadFormatVersion", "2.0")) != "2.0":
                template.warn(f"{spec.logical_id}.{event.name}: only payload format 2.0 is emulated")
            method = str(properties.get("Method", "ANY")).upper()
            method = "ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method
            api = next(
                (api for api in apis if template.physical_name(api) == properties.get("ApiId")), IMPLICIT_HTTP_API
            )
            authorizer = (properties.get("Auth") or {}).get("Authorizer")
            if authorizer is None:
                authorizer = (template.properties(api).get("Auth") or {}).get("DefaultAuthorizer")
            path = properties.get("Path", "$default")
            routes.append(Route(method, path, spec.logical_id, template.physical_name(api), authorizer == "AWS_IAM"))
    return routes


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted((route for route in routes if route.path != "$default"), key=lambda route: route.rank)
        self.default = next((route for route in routes if route.path == "$default"), None)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None if self.default is None else (self.default, {})


def new_request_id() -> str:
    return base64.b64encode(os.urandom(11)).decode()


def is_text(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES


def http_event(
    route: Route,
    path_parameters: dict[str, str],
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    region: str,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for a request (target: path?query as sent)."""
    now = now or datetime.now(UTC)
    split = urlsplit(target)
    path = unquote(split.path)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        if name.lower() == "cookie":
            cookies += [cookie.strip() for cookie in value.split(";") if cookie.strip()]
        else:
            key = name.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    access_key = SIGV4_CREDENTIAL.search(joined.get("authorization", ""))
    caller = f"local-{access_key.group(1) if access_key else 'anonymous'}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": path,
        "rawQueryString": split.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {"accountId": ACCOUNT_ID, "apiId": route.api_id}
    if route.iam:
        event["requestContext"]["authorizer"] = {
            "iam": {
                "accessKey": access_key.group(1) if access_key else "",
                "accountId": ACCOUNT_ID,
                "callerId": caller,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{caller}",
                "userId": caller,
            }
        }
    event["requestContext"] |= {
        "domainName": f"{route.api_id}.execute-api.{region}.{URL_SUFFIX}",
        "domainPrefix": route.api_id,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": request_id or new_request_id(),
        "routeKey": route.key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if body:
        if is_text(joined.get("content-type")):
            try:
                event["body"], event["isBase64Encoded"] = body.decode(), False
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


def error_response(status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
    return status, [("Content-Type", "application/json")], body


def http_response(invocation: Invocation) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP response API Gateway makes of a payload 2.0 function's result or error."""
    if invocation.timed_out:
        return error_response(504, "timeout", "The function did not answer within its timeout")
    if invocation.error is not None:
        if invocation.error["errorType"] == "RequestTooLargeException":
            return error_response(413, "payload_too_large", "The request is larger than Lambda's 6 MB payload limit")
        return error_response(502, "internal_error", "The function failed")
    result = invocation.result
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return 200, [("Content-Type", "application/json")], body.encode()
    try:
        status = int(result["statusCode"])
        headers = [(str(name), text(value)) for name, value in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers += [(str(name), text(value)) for value in values]
        headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    except (TypeError, ValueError, AttributeError):
        return error_response(502, "internal_error", "The function returned a malformed response")
    if not 100 <= status <= 599:
        return error_response(502, "internal_error", "The function returned a malformed response")
    return status, headers, payload


def respond(
    router: Router,
    invoke: Invoke,
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    source_ip: str,
    region: str,
    request_id: str | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """What API Gateway answers to one request (`body` None: over its 10 MB limit). The path is
    decoded before it is routed, `%2F` included, so a `{name+}` route takes a decoded '/'."""
    if body is None:
        return error_response(413, "payload_too_large", "The request body is larger than 10 MB")
    path = urlsplit(target).path
    found = router.match(method, unquote(path))
    if found is None:
        return error_response(404, "not_found", f"No route for {method} {path}")
    route, parameters = found
    event = http_event(
        route,
        parameters,
        method=method,
        target=target,
        headers=headers,
        body=body,
        source_ip=source_ip,
        region=region,
        request_id=request_id,
    )
    return http_response(invoke(route.function, event))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "local-http-api"
    api: HttpApi

    def _body(self) -> bytes | None:
        """The request body, or None (read and dropped) when it is over API Gateway's limit."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while (length := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunk = self.rfile.read(length)
                self.rfile.readline()
                size += length
                if size <= MAX_REQUEST_BYTES:
                    chunks.append(chunk)
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks) if size <= MAX_REQUEST_BYTES else None
        length = int(self.headers.get("Content-Length") or 0)
        if length <= MAX_REQUEST_BYTES:
            return self.rfile.read(length)
        self.close_connection = True
        while length > 0 and (chunk := self.rfile.read(min(length, 1 << 20))):
            length -= len(chunk)
        return None

    def _handle(self) -> None:
        request_id = new_request_id()
        response = respond(
            self.api.router,
            self.api.invoke,
            method=self.command,
            target=self.path,
            headers=[*self.headers.items(), *self._forwarded()],
            body=self._body(),
            source_ip=self.client_address[0],
            region=self.api.region,
            request_id=request_id,
        )
        self._send(*response, request_id)

    def _forwarded(self) -> list[tuple[str, str]]:
        forwarded_for = self.headers.get("X-Forwarded-For")
        client = self.client_address[0]
        return [
            *([] if forwarded_for else [("X-Forwarded-For", client)]),
            ("X-Forwarded-Port", str(self.api.port)),
            ("X-Forwarded-Proto", "http"),
        ]

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("apigw-requestid", request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        """Every method goes to the router, as on API Gateway, whose `$default` route takes the
        methods no route names (TRACE, CONNECT, made-up ones), rather than the server's own 501."""
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"http | {self.address_string()} {format % args}", file=sys.stderr, flush=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class HttpApi:
    """The threading HTTP server; binds on construction so that a taken port fails at once."""

    def __init__(self, routes: list[Route], invoke: Invoke, *, region: str, host: str = HOST, port: int = 0) -> None:
        self.router = Router(routes)
        self.invoke = invoke
        self.region = region
        self._host = host
        self._server = _Server((host, port), type("Handler", (_Handler,), {"api": self}))
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
