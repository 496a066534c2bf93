"""Handlers run as Lambda runs them: warm worker processes per function, the Timeout enforced.

Each function has a pool: an idle warm worker is reused (the most recently used first), a new one
is started (a cold start) when all are busy, up to the function's ReservedConcurrentExecutions or
DEFAULT_CONCURRENCY; beyond that an invocation waits for a worker. A worker that overruns its
Timeout or dies is killed and replaced by a new one on the next invocation. An init (the import of
the handler's module) over INIT_TIMEOUT is killed and run again in a new worker as part of the
invocation, within the function's Timeout, as Lambda retries a slow init on the first invocation.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from local.template import FunctionSpec
from local.worker import read_frame, write_frame

DEFAULT_CONCURRENCY = 8
INIT_TIMEOUT = 10.0  # Lambda's limit for the init phase (importing the handler's module)
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invocation: request and response
TIMEOUT_ERROR = "Sandbox.Timedout"
WORKER_SCRIPT = Path(__file__).with_name("worker.py")
PASSED_THROUGH = ("PATH", "PYTHONDONTWRITEBYTECODE", "COVERAGE_PROCESS_START", "COVERAGE_FILE")

_output_lock = threading.Lock()


def lambda_environment(spec: FunctionSpec, *, region: str, aws_endpoint: str, dynamodb_endpoint: str) -> dict[str, str]:
    """What a handler finds in os.environ: the template's variables and what Lambda adds."""
    return {
        **spec.environment,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream_name(),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **({"AWS_LAMBDA_LOG_FORMAT": "JSON"} if spec.log_format.upper() == "JSON" else {}),
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
    }


def _log_stream_name() -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


@dataclass
class Invocation:
    """The outcome of one invocation: a result, or an error as Lambda reports it."""

    request_id: str
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    init_duration_ms: float | None = None  # set on a cold start

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.get("errorType") == TIMEOUT_ERROR


def refused_payload(event_json: bytes) -> dict[str, Any] | None:
    """The error Lambda's Invoke answers, before any handler runs, for an event over its 6 MB limit."""
    if len(event_json) <= MAX_PAYLOAD_BYTES:
        return None
    return {
        "errorType": "RequestTooLargeException",
        "errorMessage": f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the Invoke operation",
    }


class _Failed(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error = {"errorType": error_type, "errorMessage": message}


class _InitTimedOut(_Failed):
    """The init phase overran INIT_TIMEOUT: Lambda runs it again, within the invocation's Timeout."""


def _forward(stream: IO[bytes], sink: str, prefix: str) -> None:
    """Copy a worker's output to this process's stdout or stderr (as it is at each line)."""
    for line in iter(stream.readline, b""):
        with _output_lock, contextlib.suppress(ValueError, OSError):
            output: IO[str] = getattr(sys, sink)
            output.write(prefix + line.decode(errors="replace"))
            output.flush()
    stream.close()


class Worker:
    """One worker process; the protocol runs over two pipes of its own, not over stdout."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], *, suppressed_init: bool = False) -> None:
        """`suppressed_init`: the retry of an init that overran INIT_TIMEOUT, which has the function's
        Timeout for its init and the invocation together."""
        self.spec = spec
        self.suppressed_init = suppressed_init
        self.disposed = False
        child_in, self._to_child = os.pipe()
        self._from_child, child_out = os.pipe()
        env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
        env.update(environment)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = _log_stream_name()
        env["PYTHONPATH"] = os.pathsep.join(str(path) for path in (spec.code_dir, *spec.layer_dirs))
        env["PYTHONUNBUFFERED"] = "1"
        self.started = time.monotonic()
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT), spec.handler, str(child_in), str(child_out)],
                cwd=spec.code_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(child_in, child_out),
                start_new_session=True,
            )
        except BaseException:
            os.close(self._to_child)
            os.close(self._from_child)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        prefix = f"{spec.logical_id} | "
        self._forwarders = [
            threading.Thread(target=_forward, args=(stream, sink, prefix), name=f"{spec.logical_id}-log", daemon=True)
            for stream, sink in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr"))
        ]
        for forwarder in self._forwarders:
            forwarder.start()
        self.initialized = False
        self.ready_at = 0.0
        self.init_duration_ms = 0.0  # the cold start: process start and the handler module's import

    def invoke(self, event_json: bytes, request_id: str) -> Any:
        """The handler's result; raises _Failed for its error, a timeout or the process's death."""
        spec = self.spec
        stamp = f"{datetime.now(UTC) + timedelta(seconds=spec.timeout):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"
        timeout = f"{stamp} {request_id} Task timed out after {spec.timeout:.2f} seconds"
        deadline = time.monotonic() + spec.timeout
        if not self.initialized:
            if self.suppressed_init:
                init = self._read(deadline, timeout, request_id)
            else:
                init_timeout = f"Init timed out after {INIT_TIMEOUT:.2f} seconds"
                init = self._read(time.monotonic() + INIT_TIMEOUT, init_timeout, request_id, _InitTimedOut)
                deadline = time.monotonic() + spec.timeout
            if "error" in init:
                raise _Failed(init["error"]["errorType"], init["error"]["errorMessage"])
            self.initialized = True
            self.ready_at = time.monotonic()
            self.init_duration_ms = (self.ready_at - self.started) * 1000
        header = {
            "requestId": request_id,
            "deadlineMs": int((time.time() + deadline - time.monotonic()) * 1000),
            "invokedFunctionArn": spec.arn,
        }
        try:
            write_frame(self._to_child, json.dumps(header)[:-1].encode() + b', "event": ' + event_json + b"}")
        except OSError:
            raise self._exited(request_id) from None
        response = self._read(deadline, timeout, request_id)
        if "error" in response:
            error = response["error"]
            raise _Failed(error["errorType"], error["errorMessage"]) from None
        return response["result"]

    def _read(
        self, deadline: float, timeout_message: str, request_id: str, timed_out: type[_Failed] = _Failed
    ) -> dict[str, Any]:
        try:
            frame = read_frame(self._from_child, deadline)
        except TimeoutError:
            self.terminate()
            raise timed_out(TIMEOUT_ERROR, timeout_message) from None
        except (EOFError, OSError):
            raise self._exited(request_id) from None
        if len(frame) > MAX_PAYLOAD_BYTES + 32:
            raise _Failed(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes).",
            )
        response: dict[str, Any] = json.loads(frame)
        return response

    def _exited(self, request_id: str) -> _Failed:
        try:
            status = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.terminate()
            status = self.process.wait()
        return _Failed(
            "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: exit status {status}"
        )

    def terminate(self) -> None:
        """Kill the process (and anything the handler started); safe from any thread."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def dispose(self, graceful: bool = False) -> None:
        """End the process and free its pipes; only by the thread that owns the worker; once."""
        if self.disposed:
            return
        self.disposed = True
        os.close(self._to_child)  # an idle worker reads EOF and exits by itself
        try:
            self.process.wait(timeout=2 if graceful else 0.01)
        except subprocess.TimeoutExpired:
            self.terminate()
            self.process.wait()
        os.close(self._from_child)
        for forwarder in self._forwarders:
            forwarder.join(timeout=2)


class FunctionPool:
    """The execution environments of one function."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str]) -> None:
        self.spec = spec
        self.environment = environment
        self.max_workers = spec.reserved_concurrency or DEFAULT_CONCURRENCY
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._starting = 0
        self._changed = threading.Condition()
        self._closing = threading.Event()

    @property
    def size(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        invocation = Invocation(request_id)
        event_json = json.dumps(event).encode()
        invocation.error = refused_payload(event_json)
        if invocation.error is not None:
            return invocation
        try:
            worker = self._acquire()
        except _Failed as failed:
            invocation.error = failed.error
            return invocation
        started = time.monotonic()
        cold = not worker.initialized
        healthy = False
        try:
            try:
                invocation.result = worker.invoke(event_json, request_id)
            except _InitTimedOut:
                worker = self._restart(worker)
                invocation.result = worker.invoke(event_json, request_id)
            healthy = True
        except _Failed as failed:
            invocation.error = failed.error
            healthy = worker.initialized and failed.error["errorType"] not in (TIMEOUT_ERROR, "Runtime.ExitError")
        finally:
            self._release(worker, healthy)
        invocation.duration_ms = (time.monotonic() - max(started, worker.ready_at)) * 1000
        if cold:
            invocation.init_duration_ms = worker.init_duration_ms
        if invocation.error and not self._closing.is_set():
            with _output_lock, contextlib.suppress(ValueError, OSError):
                print(
                    f"{self.spec.logical_id} | {request_id} {invocation.error['errorType']}: "
                    f"{invocation.error['errorMessage']}",
                    file=sys.stderr,
                    flush=True,
                )
        return invocation

    def _acquire(self) -> Worker:
        dead: list[Worker] = []  # idle workers whose process has gone: Lambda would start new ones
        try:
            with self._changed:
                while True:
                    if self._closing.is_set():
                        raise _Failed("Runtime.Unavailable", "the local stack is stopping")
                    while self._idle and self._idle[-1].process.poll() is not None:
                        dead.append(self._idle.pop())
                    if self._idle:
                        worker = self._idle.pop()
                        self._busy.add(worker)
                        return worker
                    if self.size < self.max_workers:
                        self._starting += 1
                        break
                    self._changed.wait()
        finally:
            for worker in dead:
                worker.dispose()
        try:
            worker = self._new_worker()
        except _Failed:
            with self._changed:
                self._starting -= 1
                self._changed.notify_all()
            raise
        with self._changed:
            self._starting -= 1
            self._busy.add(worker)
            if self._closing.is_set():
                worker.terminate()
        return worker

    def _new_worker(self, suppressed_init: bool = False) -> Worker:
        try:
            return Worker(self.spec, self.environment, suppressed_init=suppressed_init)
        except OSError as exc:
            raise _Failed("Runtime.Unavailable", f"could not start a worker: {exc}") from exc

    def _restart(self, worker: Worker) -> Worker:
        """A new worker in the place of one whose init overran INIT_TIMEOUT, for the suppressed init."""
        worker.dispose()
        new = self._new_worker(suppressed_init=True)  # on failure, the old one stays busy until released
        with self._changed:
            self._busy.discard(worker)
            self._busy.add(new)
            if self._closing.is_set():
                new.terminate()
        return new

    def _release(self, worker: Worker, healthy: bool) -> None:
        with self._changed:
            self._busy.discard(worker)
            keep = healthy and not self._closing.is_set()
            if keep:
                self._idle.append(worker)
            self._changed.notify_all()
        if not keep:
            worker.dispose()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker: idle ones at once, busy ones killed (their invocations fail)."""
        with self._changed:
            self._closing.set()
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._changed.notify_all()
        for worker in busy:
            worker.terminate()
        for worker in idle:
            worker.dispose(graceful=True)
        deadline = time.monotonic() + timeout
        with self._changed:
            while (self._busy or self._starting) and time.monotonic() < deadline:
                self._changed.wait(0.1)


class Runtime:
    """A pool per function; `invoke` is the synchronous Invoke of the Lambda API."""

    def __init__(self, functions: dict[str, FunctionSpec], environments: dict[str, dict[str, str]]) -> None:
        self.functions = functions
        self.pools = {
            logical_id: FunctionPool(spec, environments[logical_id]) for logical_id, spec in functions.items()
        }

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        return self.pools[logical_id].invoke(event)

    def stop(self) -> None:
        for pool in self.pools.values():
            pool.close()
