"""The child side of `bench.harness.Child`: a fresh interpreter that runs the calls its parent sends,
one at a time, and keeps what they import and hold from one call to the next.

Before its first call it has loaded nothing beyond what every interpreter loads at start (os, sys,
marshal): bench.cold_import measures a handler's import in such a process, and any module already
loaded would make that import look cheaper than Lambda's. Calls and results travel as length-prefixed
frames over two inherited pipes, as marshal data when they hold only plain values (pickle is imported
only for the others); stdout and stderr stay the process's own, for the handlers' logs.

    python -c "import bench.child; bench.child.serve()" FD_IN FD_OUT
"""

import marshal
import os
import sys

MARSHALLED, PICKLED = b"m", b"p"


def encode(value: object) -> bytes:
    try:
        return MARSHALLED + marshal.dumps(value)
    except ValueError:  # a value of another type than marshal's, anywhere inside
        import pickle

        return PICKLED + pickle.dumps(value)


def decode(frame: bytes) -> object:
    if frame[:1] == MARSHALLED:
        return marshal.loads(frame[1:])
    import pickle

    return pickle.loads(frame[1:])  # our own parent's data


def write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(len(payload).to_bytes(8, "big") + payload)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int) -> bytes | None:
    """The next frame; None when the other side has closed its end."""
    header = _read_exact(fd, 8)
    return None if header is None else _read_exact(fd, int.from_bytes(header, "big"))


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def load_handler(module: str = "app") -> object:
    """The handler module, imported as Lambda imports it: from the function's folder, first on the path
    (bench.harness.handler_env puts it there)."""
    __import__(module)
    return sys.modules[module]


def serve() -> None:
    """Run calls until the parent closes the pipe: a frame (module, function, main), marshalled, then
    a frame of arguments. `main` names the parent's __main__ module when the arguments were pickled:
    what they refer to in __main__ is found there."""
    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    while True:
        frame = read_frame(fd_in)
        arguments = read_frame(fd_in) if frame is not None else None
        if frame is None or arguments is None:
            return
        module, function, main = marshal.loads(frame)
        try:
            if main:
                __import__(main)
                sys.modules["__main__"] = sys.modules[main]
            __import__(module)
            args = decode(arguments)
            assert isinstance(args, tuple)
            outcome = (True, getattr(sys.modules[module], function)(*args))
        except Exception as error:
            import traceback

            outcome = (False, "".join(traceback.format_exception(error)))
        sys.stdout.flush()
        sys.stderr.flush()
        write_frame(fd_out, encode(outcome))
