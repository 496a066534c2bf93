"""One Lambda execution environment: imports the handler once, then runs invocations one at a time.

Started by `local.runtime` as `python <this file> HANDLER FD_IN FD_OUT`, with the function's code and
layers on PYTHONPATH. Requests and responses travel as length-prefixed JSON frames over the two
inherited pipe descriptors, so whatever the handler prints to stdout or stderr is only log output.
Standard library only: it runs inside the function's environment, not the stack's.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import struct
import sys
import threading
import time
import traceback
from typing import Any

_HEADER = struct.Struct(">I")


def write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None) -> bytes:
    """The next frame; EOFError when the other side has gone, TimeoutError past the deadline."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return _read_exact(fd, size, deadline)


class LambdaContext:
    """The context object of the Python runtime (awslambdaric), with the same attributes."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn: str = request["invokedFunctionArn"]
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id: str = request["requestId"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms: int = request["deadlineMs"]

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def error_of(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """An error as the Lambda runtime reports it, also written to the log as the runtime does."""
    stack = traceback.format_list(traceback.extract_tb(exc.__traceback__))
    error = {"errorMessage": str(exc), "errorType": error_type or type(exc).__name__, "stackTrace": stack}
    print(f"[ERROR] {error['errorType']}: {exc}\n{''.join(traceback.format_exception(exc))}", file=sys.stderr)
    return error


def load_handler(name: str) -> Any:
    module_name, _, function_name = name.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError(exc, "Runtime.ImportModuleError") from exc
    except SyntaxError as exc:
        raise _InitError(exc, "Runtime.UserCodeSyntaxError") from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _InitError(
            AttributeError(f"Handler '{function_name}' missing on module '{module_name}'"), "Runtime.HandlerNotFound"
        )
    return handler


class _InitError(Exception):
    def __init__(self, cause: BaseException, error_type: str) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.error_type = error_type


def _exit_with_parent() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def main() -> None:
    handler_name, fd_in, fd_out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # Running this file put its folder first on sys.path; the function sees only its own code.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    try:
        handler = load_handler(handler_name)
    except _InitError as exc:
        write_frame(fd_out, json.dumps({"error": error_of(exc.cause, exc.error_type)}).encode())
        return
    except Exception as exc:
        write_frame(fd_out, json.dumps({"error": error_of(exc, "Runtime.Unknown")}).encode())
        return
    write_frame(fd_out, b'{"ready": true}')
    while True:
        try:
            request = json.loads(read_frame(fd_in))
        except EOFError:
            return
        try:
            result = handler(request["event"], LambdaContext(request))
        except Exception as exc:
            response = json.dumps({"error": error_of(exc)})
        else:
            try:
                response = json.dumps({"result": result})
            except (TypeError, ValueError) as exc:
                response = json.dumps({"error": error_of(exc, "Runtime.MarshalError")})
        sys.stdout.flush()
        sys.stderr.flush()
        write_frame(fd_out, response.encode())


if __name__ == "__main__":
    main()
