"""Cold start of each function: its import and its first invocation, against minimal Powertools
handlers of the same trigger type.

dynalite and moto are started once for the run and provisioned from template.yaml, as the local
stack does. Then, for every function of the template, in fresh processes (bench.harness.Child: an
interpreter that has loaded nothing a handler loads), with the function's environment (its template
Environment and the Globals, Lambda's own variables, the local endpoints) and its folder and the layer
on the path, as Lambda has them:

- the import of its handler module (the init phase);
- its first invocation with one of its sample events from events/, which is part of what a cold start
  costs: it creates the boto3 clients and makes the first requests.

Beside them, measured the same way in the same run, the floors: minimal Powertools handlers of each
trigger type (bench/minimal/), each making one DynamoDB call on the same table: an HTTP API resolver
(`APIGatewayHttpResolver(enable_validation=True)`) with one route and one pydantic body, an SQS
batch handler (`BatchProcessor` and `process_partial_response`) with one parser model, and a
scheduled handler.

Before measuring, the sample events of a day at a store (a location, its imports, an allocation, a
shipment) are applied once, so that each function's event does its usual work: an update, a repeated
request answered from what it stored, a shipment delivered again. Every answer is checked. Each
figure is the median of --runs fresh processes per handler, taking turns in a shuffled order so that
a neighbour's load falls on all of them. PASS when every function's total (import plus first
invocation) is within 1.2 times its floor's.

The project's own modules (layer, functions, minimal handlers) have no bytecode cache
(PYTHONDONTWRITEBYTECODE), so each process compiles them, as a package shipped without .pyc files
does; the dependencies use the bytecode pip wrote when it installed them. A cache that a process
without PYTHONDONTWRITEBYTECODE left beside the project's modules would be read instead of the
source, and make those modules look cheaper: the benchmark removes any first, and says so.

    python -m bench.cold_import [--runs 5] [--imports 10] [--only locations,stock]

--imports N adds one run per handler under PYTHONPROFILEIMPORTTIME (Python's -X importtime) and prints
where its import time goes: by package, and its N heaviest modules, for the import and for the
imports that the first invocation makes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cold_start import MARK, measure
from bench.harness import ROOT, Child, handler_env

RATIO_TARGET = 1.2
MINIMAL = ROOT / "bench" / "minimal"
EVENTS = ROOT / "events"
KINDS = {"HttpApi": "http", "SQS": "sqs", "Schedule": "schedule", "ScheduleV2": "schedule"}
FLOOR_DIRS = {"http": "http_api", "sqs": "sqs_batch", "schedule": "scheduled"}
NO_FAILURES: dict[str, Any] = {"batchItemFailures": []}


def polled_once(response: Any) -> bool:
    return isinstance(response, dict) and response.get("rounds") == 1 and response.get("failed") == 0


def answered(expected: Any, response: Any) -> bool:
    """`expected`: an HTTP status, a predicate, or the whole answer."""
    if isinstance(expected, int):
        return isinstance(response, dict) and response.get("statusCode") == expected
    if callable(expected):
        return bool(expected(response))
    return bool(response == expected)


# The sample event that each function's measured invocation gets, and its answer on the state SETUP
# leaves: each does the function's usual work, and gives the same answer every time.
MEASURED: dict[str, tuple[str, Any]] = {
    "locations": ("locations_put", 200),  # an update of the location
    "stock_locations": ("stock_locations_list", 200),  # the types: one item read
    "master_switch": ("master_switch_readiness", 200),  # the location, its imports, its counts
    "stock_imports": ("stock_imports_post", 200),  # the same request again: the import as it is now
    "stock_import_worker": ("stock_import_worker_step", NO_FAILURES),  # a step of an import that has completed
    "stock": ("stock_get", 200),  # a product's base and ledger
    "allocations": ("allocations_post", 200),  # the same allocation again
    "shipment_events": ("shipment_events_shipped_and_handed_over", NO_FAILURES),  # delivered again
    "api_docs": ("api_docs_openapi", 200),
    # It polls until shortly before its deadline: given STOP_BEFORE_TIMEOUT_MS + POLL_ONCE_MS, one
    # round, then one wait of RELAY_POLL_INTERVAL_MS (not counted: asleep), then it stops.
    "outbox_relay": ("outbox_relay_scheduled", polled_once),
    "abandoned_requests": ("abandoned_requests_scheduled", {"released_allocations": 0, "failed_imports": 0}),
}
POLLS_UNTIL_DEADLINE = {"outbox_relay"}
POLL_ONCE_MS = 900
# A day at a store, as tests/integration/test_event_files.py plays it, up to what MEASURED needs.
SETUP: list[tuple[str, Any]] = [
    ("locations_put", 201),
    ("stock_imports_post", 202),
    ("stock_import_worker_step", NO_FAILURES),
    ("stock_import_worker_file_dropped", NO_FAILURES),  # the file is put in the bucket first
    ("stock_import_worker_step_dropped_file", NO_FAILURES),  # SKU-1001: 4 units
    ("allocations_post", 201),
    ("shipment_events_shipped_and_handed_over", NO_FAILURES),
    ("outbox_relay_scheduled", lambda response: isinstance(response, dict) and response.get("failed") == 0),
]
DROPPED_FILE = b"product_id,quantity\nSKU-1001,4\n"
SETUP_POLL_MS = 3000  # the relay's setup run: rounds until it has published what the setup left


@dataclass(frozen=True)
class Target:
    """A handler to measure: a function of the template, or a floor."""

    name: str
    kind: str  # http, sqs, schedule
    code_dir: Path
    env: dict[str, str]
    event_name: str
    event: dict[str, Any]
    expected: Any
    remaining_ms: int
    beyond_stop_ms: int = 0
    floor: bool = False


def event_file(stem: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{stem}.json").read_text()))


def kind_of(spec: Any) -> str | None:
    """The function's trigger type, of those that have a floor (the first, if it has several)."""
    return next((KINDS[event.type] for event in spec.events if event.type in KINDS), None)


def function_targets(aws: Any) -> list[Target]:
    targets = []
    for spec in aws.functions.values():
        folder, kind = spec.code_dir.name, kind_of(spec)
        if kind is None:
            print(f"note: {folder} not measured: none of its triggers is of a type with a floor ({', '.join(KINDS)})")
            continue
        stem, expected = MEASURED.get(folder, (None, None))
        if stem is None:  # a function this benchmark does not know yet: its first sample event, any answer
            candidates = sorted(path.stem for path in EVENTS.glob(f"{folder}*.json"))
            if not candidates:
                raise SystemExit(f"{folder}: no sample event in events/ for its first invocation")
            stem, expected = candidates[0], (lambda response: True)
            print(f"note: {folder} is not in MEASURED; measured with {stem}, its answer unchecked")
        targets.append(
            Target(
                name=folder,
                kind=kind,
                code_dir=spec.code_dir,
                env=aws.function_env(spec.logical_id),
                event_name=stem,
                event=event_file(stem),
                expected=expected,
                remaining_ms=spec.timeout * 1000,
                beyond_stop_ms=POLL_ONCE_MS if folder in POLLS_UNTIL_DEADLINE else 0,
            )
        )
    return targets


def floor_targets(aws: Any, functions: list[Target]) -> list[Target]:
    """The minimal handlers, with the environment the template's Globals give every function and the
    table's name (TABLE_NAME, as the functions of their type have it: Globals no longer hold it)."""
    from local.runtime import lambda_environment
    from local.template import text
    from tests.conftest import http_event, sqs_event

    template = aws.template
    globals_ = template.globals.get("Function") or {}
    variables = template.resolve((globals_.get("Environment") or {}).get("Variables") or {})
    specs = {kind_of(spec): spec for spec in reversed(list(aws.functions.values()))}  # the first of each kind
    specs.pop(None, None)
    queue = next(e.properties["Queue"] for e in specs["sqs"].events if e.type == "SQS") if "sqs" in specs else ""
    body = json.dumps({"product_id": "SKU-1001", "quantity": 1})
    message = {"MessageId": "minimal-1", "ReceiptHandle": "minimal-1", "Body": body}
    message["MD5OfBody"] = hashlib.md5(body.encode()).hexdigest()
    scheduled = next((t.event for t in functions if t.kind == "schedule"), {})
    events: dict[str, tuple[str, dict[str, Any], Any]] = {
        "http": ("PUT /notes/{id}", http_event("PUT", "/notes/cold-start", {"text": "first", "quantity": 1}), 200),
        "sqs": ("1 record", sqs_event([message], queue), NO_FAILURES),
        "schedule": ("scheduled", scheduled, lambda response: response.get("items") == 0),
    }
    targets = []
    for kind in sorted({t.kind for t in functions}):
        name = f"minimal {kind}"
        spec = dataclasses.replace(
            specs[kind],
            logical_id=f"Minimal{kind.title()}Function",
            name=f"bench-minimal-{kind}",
            code_dir=MINIMAL / FLOOR_DIRS[kind],
            environment={
                **{key: text(value) for key, value in variables.items()},
                "TABLE_NAME": specs[kind].environment["TABLE_NAME"],
            },
            timeout=int(template.resolve(globals_.get("Timeout", 3))),
            memory_size=int(template.resolve(globals_.get("MemorySize", 128))),
            reserved_concurrency=None,
            log_group=f"/aws/lambda/bench-minimal-{kind}",
            events=(),
        )
        env = lambda_environment(
            spec, region=aws.region, aws_endpoint=aws.aws_endpoint, dynamodb_endpoint=aws.dynamodb_endpoint
        )
        label, event, expected = events[kind]
        targets.append(Target(name, kind, spec.code_dir, env, label, event, expected, spec.timeout * 1000, floor=True))
    return targets


def cold_start(
    target: Target, *, event: dict[str, Any] | None = None, beyond_stop_ms: int | None = None, profile: Any = None
) -> dict[str, Any]:
    """One cold start of the target in a fresh process."""
    env = handler_env(target.env, target.code_dir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if profile is not None:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    beyond = target.beyond_stop_ms if beyond_stop_ms is None else beyond_stop_ms
    with Child(env, stderr=profile) as child:
        return child.call(measure, event or target.event, target.remaining_ms, beyond)


def set_up(aws: Any, functions: list[Target]) -> None:
    """The sample events of a day at a store, each once, in a fresh process of its function."""

    def target_of(stem: str) -> Target:  # the function whose folder name is the longest prefix
        return max((t for t in functions if stem.startswith(t.name)), key=lambda t: len(t.name))

    dropped = json.loads(event_file("stock_import_worker_file_dropped")["Records"][0]["body"])["Records"][0]["s3"]
    for stem, expected in SETUP:
        if stem == "stock_import_worker_file_dropped":
            aws.client("s3").put_object(
                Bucket=dropped["bucket"]["name"], Key=dropped["object"]["key"], Body=DROPPED_FILE
            )
        target = target_of(stem)
        beyond = SETUP_POLL_MS if target.name in POLLS_UNTIL_DEADLINE else 0
        result = cold_start(target, event=event_file(stem), beyond_stop_ms=beyond)
        if not answered(expected, result["response"]):
            raise SystemExit(f"setup: {stem} answered {str(result['response'])[:300]}")


# ---------------------------------------------------------------- the import time profile

IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S.*)$")


def import_profile(target: Target) -> dict[str, list[tuple[int, int, int, str]]]:
    """(self us, cumulative us, depth, module) of every import, by phase ("import", "invocation")."""
    with tempfile.TemporaryFile("w+") as err:
        cold_start(target, profile=err)
        err.seek(0)
        phases: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
        phase = ""
        for line in err:
            if line.startswith(MARK):
                phase = line[len(MARK) :].strip()
                continue
            match = IMPORT_LINE.match(line)
            if match and phase in ("import", "invocation"):
                own, cumulative, indent, name = match.groups()
                phases[phase].append((int(own), int(cumulative), (len(indent) - 1) // 2, name.strip()))
    return phases


def package_of(module: str) -> str:
    top = module.split(".", maxsplit=1)[0]
    return "(stdlib)" if top in sys.stdlib_module_names else top


def print_profile(target: Target, top: int) -> None:
    phases = import_profile(target)
    for phase in ("import", "invocation"):
        entries = phases.get(phase, [])
        total = sum(cumulative for _, cumulative, depth, _ in entries if depth == 0) / 1000
        packages: dict[str, int] = defaultdict(int)
        for own, _, _, name in entries:
            packages[package_of(name)] += own
        ranked = sorted(packages.items(), key=lambda pair: -pair[1])[:6]
        what = "its import" if phase == "import" else "its first invocation imported"
        if not entries:
            print(f"  {target.name:<22} {what}: nothing")
            continue
        print(
            f"  {target.name:<22} {what}: {total:.0f} ms, {len(entries)} modules; by package (own ms): "
            + ", ".join(f"{name} {us / 1000:.0f}" for name, us in ranked)
        )
        heaviest = sorted(entries, key=lambda entry: -entry[0])[:top]
        if heaviest:
            print("    heaviest (own ms): " + ", ".join(f"{name} {own / 1000:.1f}" for own, _, _, name in heaviest))


# ---------------------------------------------------------------- the parent


def remove_bytecode_caches() -> list[Path]:
    """The __pycache__ folders of the project's own code (the layer, the functions, the floors),
    removed: each child must compile those modules, as Lambda does with a package without .pyc."""
    import shutil

    found = sorted(
        path for folder in (ROOT / "layers", ROOT / "functions", MINIMAL) for path in folder.rglob("__pycache__")
    )
    for path in found:
        shutil.rmtree(path)
    return found


def calls_text(calls: dict[Any, int]) -> str:
    return ", ".join(f"{op} {n}" for (service, op), n in sorted(calls.items()) if service == "dynamodb") or "none"


def other_calls(calls: dict[Any, int]) -> str:
    return ", ".join(f"{service} {op} {n}" for (service, op), n in sorted(calls.items()) if service != "dynamodb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per handler; the median is shown")
    parser.add_argument("--imports", type=int, default=0, metavar="N", help="the import time profile, N modules")
    parser.add_argument("--only", default="", help="comma-separated function folders (their floors always run)")
    args = parser.parse_args()
    from local.stack import LocalAws  # not in the children: they hold what a handler holds, no more

    for path in remove_bytecode_caches():
        print(f"note: removed {path.relative_to(ROOT)}: the handlers would have read it instead of their source")
    load = os.getloadavg()[0]
    bare = subprocess.run(
        [sys.executable, "-c", "import sys; print(len(sys.modules))"], capture_output=True, text=True, check=True
    )
    with LocalAws(ROOT / "template.yaml") as aws:
        functions = function_targets(aws)
        floors = floor_targets(aws, functions)
        set_up(aws, functions)
        if args.only:
            functions = [t for t in functions if t.name in args.only.split(",")]
        targets = functions + floors
        runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        wrong: list[str] = []
        for n in range(args.runs):
            print(f"run {n + 1} of {args.runs}: {len(targets)} handlers, a fresh process each", file=sys.stderr)
            order = list(targets)
            random.Random(n).shuffle(order)
            for target in order:
                result = cold_start(target)
                result["total_s"] = result["import_s"] + result["invoke_s"]
                runs[target.name].append(result)
                if not answered(target.expected, result["response"]):
                    wrong.append(f"{target.name} ({target.event_name}) answered {str(result['response'])[:200]}")
        passed = report(targets, runs, wrong, args.runs, load, int(bare.stdout))
        if args.imports:
            print("Where the import time goes (one more run each, under -X importtime, which inflates it):")
            for target in targets:
                print_profile(target, args.imports)
    sys.exit(0 if passed else 1)


def report(
    targets: list[Target], runs: dict[str, list[dict[str, Any]]], wrong: list[str], n: int, load: float, bare: int
) -> bool:
    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name]) * 1000

    def cpu(name: str) -> float:
        return statistics.median(run["import_cpu_s"] + run["invoke_cpu_s"] for run in runs[name]) * 1000

    floors = {t.kind: (median(t.name, "total_s"), cpu(t.name)) for t in targets if t.floor}
    columns = f"{'handler':<22} {'trigger':<8} {'event':<44} {'import_ms':>9} {'invoke_ms':>9} {'total_ms':>8}"
    columns += f" {'min-max':>11} {'floor_ms':>8} {'ratio':>5} {'cpu_ms':>6} {'cpu_ratio':>9}  DynamoDB calls"
    print(columns)
    over = []
    for target in targets:
        name, totals = target.name, [run["total_s"] * 1000 for run in runs[target.name]]
        (total, cpu_ms), (floor, floor_cpu) = (median(name, "total_s"), cpu(name)), floors[target.kind]
        ratio = total / floor
        if not target.floor and ratio > RATIO_TARGET:
            over.append(f"{name} {ratio:.2f}")
        print(
            f"{name:<22} {target.kind:<8} {target.event_name:<44} {median(name, 'import_s'):>9.0f} "
            f"{median(name, 'invoke_s'):>9.0f} {total:>8.0f} {f'{min(totals):.0f}-{max(totals):.0f}':>11} "
            f"{floor:>8.0f} {ratio:>5.2f} {cpu_ms:>6.0f} {cpu_ms / floor_cpu:>9.2f}  "
            + calls_text(runs[name][0]["calls"])
        )
    print(
        f"(median of {n} fresh processes per handler; total: import + first invocation, in the same process; "
        "min-max: of the totals; floor: the minimal handler of the same trigger type; ratio: total / floor; "
        "cpu_ms: the process's CPU time over both, and cpu_ratio its ratio to the floor's. The floors create "
        "their client at import, the functions at their first invocation: compare the totals.)"
    )
    for target in targets:
        others, asleep = other_calls(runs[target.name][0]["calls"]), median(target.name, "asleep_s")
        notes = [f"also {others}"] if others else []
        if asleep:
            notes.append(f"{asleep:.0f} ms asleep between polls, not counted")
        if notes:
            print(f"  {target.name}: {'; '.join(notes)}")
        threads = max(max(run["threads"]) for run in runs[target.name])
        if threads > 1:
            wrong.append(
                f"{target.name} had {threads} threads running after its import or its invocation: they could "
                "work while the benchmark is not timing (before the invocation, or while it sleeps)"
            )
        for run in runs[target.name] if target.floor else []:
            if sum(n for (service, _), n in run["calls"].items() if service == "dynamodb") != 1:
                wrong.append(f"{target.name} made DynamoDB calls {calls_text(run['calls'])} instead of one")
    before = sorted({run["modules_before"] for each in runs.values() for run in each})
    between = sorted({name for each in runs.values() for run in each for name in run["between"]})
    print(
        f"Each process had loaded {before[0]}-{before[-1]} modules before the handler's import (a bare "
        f"interpreter: {bare}), none outside the standard library but the benchmark's own; between the import "
        f"and the invocation, the benchmark's Lambda context and SDK timer loaded {', '.join(between) or 'no more'}."
    )
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load:.1f} before the benchmark")
    for text in wrong:
        print(f"FAIL: {text}")
    if over:
        print(f"FAIL: over {RATIO_TARGET} times the minimal handler of their trigger type: {', '.join(over)}")
    else:
        print(f"PASS: every function within {RATIO_TARGET} times the minimal handler of its trigger type")
    return not over and not wrong


if __name__ == "__main__":
    main()
