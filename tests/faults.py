"""Faults injected at the AWS client boundary, with botocore's event hooks: no domain code is patched.

A fault matches one operation of one client (`UpdateItem`, `PutEvents`, ...) and, optionally, a
predicate over the request's parameters; it fires a given number of times, then the client is
itself again. Kinds:

- `throttled` / `provisioned` / `unavailable`: the call is refused before it reaches the service, as
  DynamoDB answers when the SDK's retries are exhausted (`ThrottlingException`,
  `ProvisionedThroughputExceededException`, `InternalServerError`): the adapter's own retries see
  the error once;
- `reset`: the connection is reset before an answer (`ConnectionClosedError`), the request not applied;
- `unprocessed`: a `BatchWriteItem` or `BatchGetItem` is answered with half its requests (at least
  all but one) back as `UnprocessedItems` / `UnprocessedKeys`, those not applied or read, as DynamoDB
  does when a partition is over its throughput;
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

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

Kind = Literal["throttled", "provisioned", "unavailable", "reset", "unprocessed", "timeout", "crash"]
ANY_WRITE = "any write"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_CODES = {
    "throttled": "ThrottlingException",
    "provisioned": "ProvisionedThroughputExceededException",
    "unavailable": "InternalServerError",
}
_BATCHES = {"BatchWriteItem": ("RequestItems", "UnprocessedItems"), "BatchGetItem": ("RequestItems", "UnprocessedKeys")}


class Crash(BaseException):
    """The function stopped here (a timeout, an out-of-memory kill, a lost execution environment)."""


@dataclass
class Fault:
    operation: str
    kind: Kind
    match: Callable[[Mapping[str, Any]], bool] | None = None
    times: int = 1
    when: Literal["build", "before", "after"] = "before"
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
        calls; `timeout` always fires after the call, `unprocessed` when the request is built (it only
        applies to the batch operations), the others before unless told."""
        if kind == "unprocessed" and operation not in _BATCHES:
            raise ValueError(f"only {sorted(_BATCHES)} can leave requests unprocessed")
        default: Literal["build", "before", "after"] = (
            "after" if kind == "timeout" else "build" if kind == "unprocessed" else "before"
        )
        fault = Fault(operation, kind, match, times, when or default, skip)
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
            if fault.kind == "reset":
                raise ConnectionClosedError(endpoint_url=f"injected://{operation}")
            code = _CODES[fault.kind]
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)

    def _remember(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            fault = next((f for f in self._faults if f.when == "build" and f.wanted(model.name, params)), None)
            if fault is not None:
                fault.fired += 1
                fault.calls.append(dict(params))
        if fault is not None:
            context[_HELD_BACK] = _hold_back(params, _BATCHES[model.name][0])
        context[_PARAMS] = dict(params)  # the request as the caller gave it (less what was held back)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls.append((model.name, context.get(_PARAMS, {})))
        self._fire("before", model.name, context.get(_PARAMS, {}))

    def writes(self) -> list[str]:
        """The write operations called so far."""
        return [operation for operation, _ in self.calls if operation in WRITES]

    def _after(self, model: Any, context: dict[str, Any], parsed: dict[str, Any], **_: Any) -> None:
        held_back = context.pop(_HELD_BACK, None)
        if held_back:  # the requests the service never saw come back as not processed
            unprocessed = parsed.setdefault(_BATCHES[model.name][1], {})
            for table, requests in held_back.items():
                if isinstance(requests, list):
                    unprocessed.setdefault(table, []).extend(requests)
                else:
                    unprocessed.setdefault(table, {**requests, "Keys": []})["Keys"].extend(requests["Keys"])
        self._fire("after", model.name, context.get(_PARAMS, {}))


_PARAMS = "injected_faults_params"
_HELD_BACK = "injected_faults_held_back"


def _hold_back(params: dict[str, Any], field: str) -> dict[str, Any]:
    """Take the second half of each table's requests out of a batch request, keeping at least one,
    and return what was taken. The request is rebuilt, not edited: botocore serializes what the hook
    leaves in `params`, and the caller's own lists stay as it made them."""
    kept: dict[str, Any] = {}
    held: dict[str, Any] = {}
    for table, requests in params[field].items():
        items = list(requests if isinstance(requests, list) else requests["Keys"])
        keep = max(1, len(items) // 2)
        rest: Any = items[keep:]
        if isinstance(requests, list):
            kept[table] = items[:keep]
        else:
            kept[table], rest = {**requests, "Keys": items[:keep]}, {**requests, "Keys": rest}
        if items[keep:]:
            held[table] = rest
    params[field] = kept
    return held


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
