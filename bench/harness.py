"""What the benchmarks share: child processes, DynamoDB call counts, time inside the SDK, the Lambda
context, reading items back and their write units.

Run the benchmarks from the repository root as `python -m bench.<name>`, with the domain layer on
PYTHONPATH, where Lambda puts a layer's code (the Makefile's bench targets set it, as pytest's
`pythonpath` does for the tests); child processes inherit it.
"""

from __future__ import annotations

import marshal
import math
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from bench.child import MARSHALLED, decode, encode, read_frame, write_frame

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
Key = tuple[str, str]  # (pk, sk)


# ---------------------------------------------------------------- child processes


class ChildError(RuntimeError):
    """A call failed in the child (its traceback is the message), or the child ended."""


class Child:
    """A fresh interpreter of its own (bench.child), started with `env` added to this process's
    environment (as in Lambda, it is there before any import: Powertools' Logger and Metrics read it
    when the domain layer is imported), that keeps what it imported and holds between calls.

    `call(function, *args)` runs a module-level function there; arguments and results must pickle.
    """

    def __init__(self, env: Mapping[str, str] | None = None, stderr: IO[Any] | None = None) -> None:
        self._env = dict(env or {})
        self._stderr = stderr
        self._process: subprocess.Popen[bytes] | None = None
        self._to_child = self._from_child = -1

    def _start(self) -> None:
        child_in, self._to_child = os.pipe()
        self._from_child, child_out = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", "import bench.child; bench.child.serve()", str(child_in), str(child_out)],
                env={**os.environ, **self._env},
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stderr=self._stderr,
                pass_fds=(child_in, child_out),
            )
        finally:
            os.close(child_in)
            os.close(child_out)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        if self._process is None:
            self._start()
        main = getattr(sys.modules["__main__"].__spec__, "name", None)
        module = function.__module__
        if module == "__main__":
            if main is None:
                raise ChildError("run the benchmark as a module: python -m bench.<name>")
            module = main
        arguments = encode(args)
        pickled = arguments[:1] != MARSHALLED
        write_frame(self._to_child, marshal.dumps((module, function.__qualname__, main if pickled else None)))
        write_frame(self._to_child, arguments)
        frame = read_frame(self._from_child)
        if frame is None:
            assert self._process is not None
            raise ChildError(f"the child process ended with {self._process.wait()} during {function.__name__}")
        outcome = decode(frame)
        assert isinstance(outcome, tuple)
        ok, value = outcome
        if not ok:
            raise ChildError(f"{function.__name__} failed in the child process:\n{value}")
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._process is None:
            return
        os.close(self._to_child)  # the child's next read ends: it returns
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._from_child)
        self._process = None

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def in_child(function: Callable[..., T], *args: Any, env: Mapping[str, str] | None = None) -> T:
    """`function(*args)` in a fresh interpreter, as a Lambda sandbox is (its peak RSS is its own)."""
    with Child(env) as child:
        return child.call(function, *args)


def handler_env(env: Mapping[str, str], code_dir: str | os.PathLike[str]) -> dict[str, str]:
    """A function's environment with its code folder first on the path, before the layer, as Lambda
    has them: a child started with it loads the handler with `load_handler()`."""
    path = [str(code_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def lambda_context_class() -> Any:
    """The Lambda context class of the tests (tests.conftest.FakeContext: `FakeContext(remaining_ms)`).
    Imported when asked for, not with this module: tests.conftest loads PyYAML and reads the template,
    which a child must not have done before it measures a handler's import."""
    from tests.conftest import FakeContext

    return FakeContext


# ---------------------------------------------------------------- DynamoDB calls and SDK time

SINGLE_WRITES = ("PutItem", "UpdateItem", "DeleteItem")


class CallCounter:
    """Counts a client's DynamoDB calls by operation (botocore's before-parameter-build event), and
    remembers the keys of single-item writes."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.single_writes: list[Key] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            if model.name in SINGLE_WRITES:
                key = params.get("Key") or params["Item"]
                self.single_writes.append((key["pk"]["S"], key["sk"]["S"]))


class SdkTime:
    """CPU and wall time spent inside botocore's API calls (serialising, signing, sending, parsing), of
    every client of this process, and the calls by service and operation. Needs botocore imported."""

    def __init__(self) -> None:
        from botocore.client import BaseClient

        self.cpu = self.wall = 0.0
        self.paused = False  # calls made while set (the benchmark's own reads) are not counted
        self.by_operation: dict[str, list[float]] = {}  # operation: [calls, CPU seconds, wall seconds]
        self.calls: Counter[tuple[str, str]] = Counter()  # (service, operation): calls
        original = BaseClient._make_api_call

        def timed(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if self.paused:
                return original(client, operation, params)
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                self.cpu += cpu
                self.wall += wall
                totals = self.by_operation.setdefault(operation, [0, 0.0, 0.0])
                totals[0] += 1
                totals[1] += cpu
                totals[2] += wall
                self.calls[(client.meta.service_model.service_name, operation)] += 1

        BaseClient._make_api_call = timed  # type: ignore[method-assign]


# ---------------------------------------------------------------- reading items back


def query_pages(client: Any, table: str, pk: str) -> Iterator[dict[str, Any]]:
    """Every page of a consistent Query of one partition."""
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        page = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
            **kwargs,
        )
        yield page
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def read_partitions(
    client: Any, table: str, partitions: Iterable[str], reduce: Callable[[Iterator[dict[str, Any]]], T]
) -> list[T]:
    """`reduce` of the items of each partition (streamed, page by page), 4 partitions at a time."""
    from concurrent.futures import ThreadPoolExecutor

    def one(pk: str) -> T:
        return reduce(item for page in query_pages(client, table, pk) for item in page["Items"])

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, partitions))


def read_items(client: Any, table: str, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """The items of `keys` that exist, by consistent BatchGetItem."""
    keys = list(keys)
    found: dict[Key, dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        pending: dict[str, Any] = {
            table: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        while pending:
            response = client.batch_get_item(RequestItems=pending)
            for item in response["Responses"].get(table, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            pending = response.get("UnprocessedKeys") or {}
    return found


# ---------------------------------------------------------------- item sizes and write units
# DynamoDB's rules: the local backends' consumed capacity is not trustworthy.


def number_size(text: str) -> int:
    digits = text.lstrip("-").split("E")[0].replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def attribute_size(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    sizes: dict[str, Callable[[Any], int]] = {
        "S": lambda v: len(v.encode()),
        "N": number_size,
        "B": len,
        "BOOL": lambda _: 1,
        "NULL": lambda _: 1,
        "SS": lambda v: sum(len(s.encode()) for s in v),
        "NS": lambda v: sum(number_size(n) for n in v),
        "BS": lambda v: sum(len(b) for b in v),
        "M": lambda v: 3 + sum(len(k.encode()) + attribute_size(x) + 1 for k, x in v.items()),
        "L": lambda v: 3 + sum(attribute_size(x) + 1 for x in v),
    }
    return sizes[kind](data)


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(item: Mapping[str, Any]) -> int:
    """The write units of writing `item` (1 per KB, rounded up)."""
    return max(1, math.ceil(item_size(item) / 1024))


def total_write_units(items: Iterable[Mapping[str, Any]]) -> int:
    return sum(write_units(item) for item in items)
