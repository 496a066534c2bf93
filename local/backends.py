"""The emulated AWS on 127.0.0.1: dynalite for DynamoDB, moto's server for everything else.

DynamoDB goes to dynalite because moto's in-process backend loses conditional updates under
concurrent requests; dynalite does not (it lacks TransactWriteItems, TTL and the Item of
ReturnValuesOnConditionCheckFailure, which the service does not use).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0  # a wait for readiness, over at the first answer: room for a loaded machine


class BackendError(RuntimeError):
    """A backend did not start."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_until_answers(url: str, timeout: float = START_TIMEOUT) -> None:
    """Until an HTTP server at url answers anything at all (an error status counts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local server
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BackendError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.05)


class Dynalite:
    """dynalite in a process group of its own, which also ends when this process dies."""

    def __init__(self, port: int = 0, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.endpoint = f"http://{HOST}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._drain = threading.Thread()

    @staticmethod
    def executable() -> str:
        local = REPO_ROOT / "node_modules" / ".bin" / "dynalite"
        found = str(local) if local.exists() else shutil.which("dynalite")
        if not found:
            raise BackendError("dynalite is not installed: run `npm ci` in the repository root")
        return found

    def start(self) -> None:
        command = [self.executable(), "--host", HOST, "--port", str(self.port)]
        command += ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        if self.data_dir:
            Path(self.data_dir).mkdir(parents=True, exist_ok=True)
            command += ["--path", str(self.data_dir)]
        # The shell waits on a pipe only this process holds open: when it closes (this process
        # ended, however), the shell stops dynalite, so no dynalite outlives the stack.
        watchdog = '"$0" "$@" & read -r _; kill $! 2>/dev/null'
        guard = Path(__file__).with_name("dynalite_guard.cjs")  # a dropped client must not stop it
        options = " ".join(filter(None, (os.environ.get("NODE_OPTIONS"), f"--require {guard}")))
        self._process = subprocess.Popen(
            ["sh", "-c", watchdog, *command],
            env={**os.environ, "NODE_OPTIONS": options},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stream = self._process.stdout
        assert stream is not None
        ready = threading.Event()
        output: list[bytes] = []

        def drain() -> None:
            for line in iter(stream.readline, b""):
                output.append(line)
                if b"listening at" in line:
                    ready.set()

        self._drain = threading.Thread(target=drain, name="dynalite-output", daemon=True)
        self._drain.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BackendError(f"dynalite did not start on port {self.port}: {b''.join(output).decode()}")
        wait_until_answers(self.endpoint)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._drain.join(timeout=5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


class MotoServer(ThreadedMotoServer):
    """moto's threaded server, binding in the caller's thread so that a taken port fails at once.

    moto's backends belong to the process, not to a server: the first server to start empties
    them (as a new process would have them), and servers running at once share them.
    """

    _running = 0
    _running_lock = threading.Lock()

    def __init__(self, port: int = 0) -> None:
        super().__init__(ip_address=HOST, port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per SQS poll
        app = DomainDispatcherApplication(create_backend_app)
        try:
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        except SystemExit:  # werkzeug exits when the port is taken
            raise BackendError(f"moto could not listen on {self._ip_address}:{self._port}") from None
        with MotoServer._running_lock:
            first = MotoServer._running == 0
            MotoServer._running += 1
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        self._server_ready_event.set()
        host, port = self.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        wait_until_answers(f"{self.endpoint}/moto-api/data.json")
        if first:
            reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
            urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - our own local server

    def stop(self) -> None:
        if self._server is not None:
            super().stop()
            self._server.server_close()
            self._server = None
            with MotoServer._running_lock:
                MotoServer._running -= 1
