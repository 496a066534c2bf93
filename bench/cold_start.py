"""The child side of bench.cold_import: one cold start of a handler, in this fresh process.

Standard library only before the handler is imported (and little of it: see bench.child), so that
nothing the handler imports is there already. What the benchmark itself needs for the invocation
(the Lambda context, the SDK timer) is imported after the handler's import and before the
invocation, outside both timings; `between` lists what that loaded.
"""

import os
import sys
import time

from bench.child import load_handler

# Loaded in a child before the handler, and imported by no handler: the benchmark's own modules, and
# what the site module may load into every interpreter (setuptools' start-up hook, local customizing).
OWN_MODULES = ("__main__", "bench", "_distutils_hack", "sitecustomize", "usercustomize")
MARK = "##cold-start "


def foreign(names: list[str]) -> list[str]:
    """The modules of `names` that are neither the standard library's nor the benchmark's."""
    tops = {name.split(".")[0] for name in names}
    return sorted(top for top in tops if top not in sys.stdlib_module_names and top not in OWN_MODULES)


def mark(phase: str) -> None:
    """Under PYTHONPROFILEIMPORTTIME, a line on stderr between the import time lines of two phases."""
    if os.environ.get("PYTHONPROFILEIMPORTTIME"):
        os.write(2, f"{MARK}{phase}\n".encode())


def measure(event: dict, remaining_ms: int, beyond_stop_ms: int) -> dict:
    """Import `app` (the function's folder is first on the path), then invoke `lambda_handler` once
    with `event` and a context of `remaining_ms` (or, when `beyond_stop_ms`, the handler's own
    STOP_BEFORE_TIMEOUT_MS plus that: a handler that polls until shortly before its deadline then
    polls once). Time asleep in time.sleep during the invocation is measured apart."""
    preloaded = foreign(list(sys.modules))
    if preloaded:
        raise RuntimeError(f"loaded before the handler's import, which would look cheaper: {preloaded}")
    modules_before = len(sys.modules)
    logs = os.open(os.devnull, os.O_WRONLY)
    os.dup2(logs, 1)  # the handler's JSON logs and metrics, and its warnings: CloudWatch's, in Lambda
    if not os.environ.get("PYTHONPROFILEIMPORTTIME"):  # else stderr is the import time profile's
        os.dup2(logs, 2)
    asleep = [0.0]
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        started = time.perf_counter()
        try:
            real_sleep(seconds)
        finally:
            asleep[0] += time.perf_counter() - started

    time.sleep = sleep  # type: ignore[assignment]

    mark("import")
    wall, cpu = time.perf_counter(), time.process_time()
    handler = load_handler()
    import_wall, import_cpu = time.perf_counter() - wall, time.process_time() - cpu
    mark("between")
    threads_after_import = len(sys._current_frames())  # others could work, untimed, until the invocation
    after_import = set(sys.modules)

    from bench.harness import SdkTime, lambda_context_class

    sdk = SdkTime() if "botocore.client" in sys.modules else None
    context_class = lambda_context_class()
    between = foreign(sorted(set(sys.modules) - after_import))
    if beyond_stop_ms:
        remaining_ms = handler.STOP_BEFORE_TIMEOUT_MS + beyond_stop_ms  # type: ignore[attr-defined]
    context = context_class(remaining_ms=remaining_ms)
    asleep[0] = 0.0

    mark("invocation")
    wall, cpu = time.perf_counter(), time.process_time()
    response = handler.lambda_handler(event, context)  # type: ignore[attr-defined]
    invoke_wall, invoke_cpu = time.perf_counter() - wall, time.process_time() - cpu
    mark("end")
    threads_after_invocation = len(sys._current_frames())  # others could have worked while it slept
    time.sleep = real_sleep
    return {
        "import_s": import_wall,
        "import_cpu_s": import_cpu,
        "invoke_s": invoke_wall - asleep[0],
        "invoke_cpu_s": invoke_cpu,
        "asleep_s": asleep[0],
        "sdk_s": sdk.wall if sdk else 0.0,
        "calls": dict(sdk.calls) if sdk else {},
        "modules_before": modules_before,
        "modules_imported": len(after_import) - modules_before,
        "between": between,
        "threads": [threads_after_import, threads_after_invocation],
        "response": response,
    }
