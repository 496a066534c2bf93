"""API Gateway in this process: requests routed as template.yaml routes them (the local stack's own
router and payload 2.0 events, `local/http_api.py`) to the functions' real handlers, called
in-process on the local backends. As a WSGI application it is what schemathesis sends its
generated requests to; `call` is the same path for hand-made requests."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

from local.http_api import MAX_REQUEST_BYTES, Router, respond, routes_from
from local.runtime import Invocation, refused_payload
from local.template import Template
from tests.conftest import FakeContext, load_handler, sqs_event

CALLER = "AKIAHOSTILETEST"
SIGV4 = f"AWS4-HMAC-SHA256 Credential={CALLER}/20260101/eu-west-1/execute-api/aws4_request, Signature=0"


class Gateway:
    """Counts every request it answers, by status, in `statuses`."""

    def __init__(self, template: Template) -> None:
        """Routes from the template alone: the handlers find the local backends through the
        environment that the integration fixtures set before the first request."""
        functions = template.functions()
        self.region = template.region
        self.router = Router(routes_from(template, functions))
        self._folders = {logical_id: Path(spec.code_dir).name for logical_id, spec in functions.items()}
        self._timeouts = {logical_id: spec.timeout for logical_id, spec in functions.items()}
        self._handlers: dict[str, ModuleType] = {}
        self.statuses: Counter[int] = Counter()

    def handler(self, function: str) -> ModuleType:
        if function not in self._handlers:
            self._handlers[function] = load_handler(self._folders[function])
        return self._handlers[function]

    def invoke(self, function: str, event: Any) -> Invocation:
        """Lambda's synchronous Invoke, in this process: its 6 MB limit first, then the handler."""
        invocation = Invocation(str(uuid.uuid4()))
        invocation.error = refused_payload(json.dumps(event).encode())
        if invocation.error is None:
            context = FakeContext(remaining_ms=self._timeouts[function] * 1000)
            try:
                invocation.result = self.handler(function).lambda_handler(event, context)
            except Exception as error:  # Lambda reports it; API Gateway answers 502
                invocation.error = {"errorType": type(error).__name__, "errorMessage": str(error)}
        return invocation

    def send(
        self, method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The HTTP answer to one request; `target` is the path and query as sent on the wire."""
        sent = [("Authorization", SIGV4), *headers]
        if not any(name.lower() == "content-type" for name, _ in sent):
            sent.append(("Content-Type", "application/json"))
        status, answer_headers, payload = respond(
            self.router,
            self.invoke,
            method=method,
            target=target,
            headers=sent,
            body=body if len(body) <= MAX_REQUEST_BYTES else None,
            source_ip="192.0.2.1",
            region=self.region,
        )
        self.statuses[status] += 1
        return status, answer_headers, payload

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON answer); `path` is sent as given, so percent-encode what must be."""
        data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        target = path + (f"?{urlencode(query)}" if query else "")
        status, _, payload = self.send(method, target, data)
        return status, json.loads(payload) if payload else None

    def run_import(self, location_id: str, import_id: str) -> Any:
        """Deliver the import's step to the worker, as its queue would (other tests' steps stay
        on the queue), and answer the import's status."""
        body = json.dumps({"location_id": location_id, "import_id": import_id})
        message = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": str(uuid.uuid4()),
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),  # what SQS computes
        }
        worker = self.handler("StockImportWorkerFunction")
        arn = f"arn:aws:sqs:{self.region}:123456789012:import-queue"
        assert worker.lambda_handler(sqs_event([message], arn), FakeContext(remaining_ms=300_000)) == {
            "batchItemFailures": []
        }
        return self.call("GET", f"/locations/{location_id}/stock-imports/{import_id}")[1]

    def publish_outbox(self) -> None:
        """Run the outbox relay, as its schedule would, until it publishes nothing more: the tests
        that come after find none of these requests' events waiting before theirs."""
        relay = self.handler("OutboxRelayFunction")
        for _ in range(100):
            if relay.lambda_handler({}, FakeContext(remaining_ms=5_300))["published"] == 0:
                return
        raise AssertionError("the outbox relay kept publishing")

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        target = environ.get("REQUEST_URI") or environ.get("RAW_URI") or quote(environ.get("PATH_INFO", "/"))
        if "?" not in target and environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = [
            (name[5:].replace("_", "-").lower(), str(value))
            for name, value in environ.items()
            if name.startswith("HTTP_")
        ]
        if environ.get("CONTENT_TYPE"):
            headers.append(("content-type", environ["CONTENT_TYPE"]))
        status, answer_headers, payload = self.send(environ["REQUEST_METHOD"], target, body, headers)
        start_response(f"{status} {HTTPStatus(status).phrase}", answer_headers)
        return [payload]
