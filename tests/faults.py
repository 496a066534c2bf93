"""Faults injected at the AWS client boundary, with botocore's event hooks: no domain code is patched.

A fault matches one operation of one client (`UpdateItem`, `PutEvents`, ...) and, optionally, a
predicate over the request's parameters; it fires a given number of times, then the client is
itself again. Kinds:

- `throttled` / `unavailable`: the call is refused before it reaches the service, as DynamoDB
  answers when its retries are exhausted (the adapter's own retries see the error once);
- `timeout`: the call reaches the service and is applied, then the answer is lost (a read
  timeout): the caller cannot tell whether its write happened;
- `crash`: the function stops there, before the call (`when="before"`) or after it was applied
  (`when="after"`), by an exception that no domain code catches (it derives from BaseException,
  as the end of a Lambda invocation does not run `except Exception` blocks either).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError, ReadTimeoutError

Kind = Literal["throttled", "unavailable", "timeout", "crash"]
ANY_WRITE = "any write"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_CODES = {"throttled": "ThrottlingException", "unavailable": "InternalServerError"}


class Crash(BaseException):
    """The function stopped here (a timeout, an out-of-memory kill, a lost execution environment)."""


@dataclass
class Fault:
    operation: str
    kind: Kind
    match: Callable[[Mapping[str, Any]], bool] | None = None
    times: int = 1
    when: Literal["before", "after"] = "before"
    skip: int = 0  # matching calls let through before the fault fires
    fired: int = 0
    calls: list[Mapping[str, Any]] = field(default_factory=list)

    def wanted(self, operation: str, params: Mapping[str, Any]) -> bool:
        named = operation == self.operation or (self.operation == ANY_WRITE and operation in WRITES)
        if self.fired >= self.times or not named or (self.match is not None and not self.match(params)):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return True


class Faults:
    """The faults armed on one boto3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._faults: list[Fault] = []
        self.calls: list[tuple[str, Mapping[str, Any]]] = []  # every call the client made, in order
        self._lock = threading.Lock()
        events = client.meta.events
        events.register_first("before-parameter-build", self._remember)
        events.register_first("before-call", self._before)
        events.register_first("after-call", self._after)

    def close(self) -> None:
        events = self._client.meta.events
        events.unregister("before-parameter-build", self._remember)
        events.unregister("before-call", self._before)
        events.unregister("after-call", self._after)

    def inject(
        self,
        operation: str,
        kind: Kind,
        *,
        match: Callable[[Mapping[str, Any]], bool] | None = None,
        times: int = 1,
        when: Literal["before", "after"] | None = None,
        skip: int = 0,
    ) -> Fault:
        """Arm a fault on `operation` (or on any write: ANY_WRITE), past its first `skip` matching
        calls; `timeout` always fires after the call, the others before unless told."""
        fault = Fault(operation, kind, match, times, when or ("after" if kind == "timeout" else "before"), skip)
        self._faults.append(fault)
        return fault

    def disarm(self) -> None:
        self._faults.clear()

    def _fire(self, when: str, operation: str, params: Mapping[str, Any]) -> None:
        with self._lock:  # the adapter writes import rows from several threads
            fault = next((f for f in self._faults if f.when == when and f.wanted(operation, params)), None)
            if fault is not None:
                fault.fired += 1
                fault.calls.append(params)
        if fault is not None:
            if fault.kind == "crash":
                raise Crash(f"stopped {when} {operation}")
            if fault.kind == "timeout":
                raise ReadTimeoutError(endpoint_url=f"injected://{operation}")
            code = _CODES[fault.kind]
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)

    @staticmethod
    def _remember(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS] = dict(params)  # the request as the caller gave it, before serialization

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls.append((model.name, context.get(_PARAMS, {})))
        self._fire("before", model.name, context.get(_PARAMS, {}))

    def writes(self) -> list[str]:
        """The write operations called so far."""
        return [operation for operation, _ in self.calls if operation in WRITES]

    def _after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        self._fire("after", model.name, context.get(_PARAMS, {}))


_PARAMS = "injected_faults_params"


@contextmanager
def faults_on(client: Any) -> Iterator[Faults]:
    faults = Faults(client)
    try:
        yield faults
    finally:
        faults.close()


def item_key(params: Mapping[str, Any]) -> tuple[str, str]:
    """The (pk, sk) of a single-item request, in its wire form."""
    key = params.get("Key") or params.get("Item") or {}
    return key.get("pk", {}).get("S", ""), key.get("sk", {}).get("S", "")
