"""Stock imports of files of about 50,000 rows, over HTTP against the running local stack.

`make soak-imports` runs the same with files of 1,000,000 rows (E2E_IMPORT_ROWS)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, descendants
from tests.e2e.conftest import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.long]

ROWS = int(os.environ.get("E2E_IMPORT_ROWS", "20000"))
# the killed import needs time between a checkpoint and its end for the kill to land mid-way
KILL_ROWS = max(ROWS, 30_000)
WAIT_S = max(240.0, ROWS / 1_000)  # the local backend writes about 10,000 rows a second; reads are slower
WORKER_DIR = ROOT / "functions" / "stock_import_worker"


def upload(stack: RunningStack, key: str, lines: list[str]) -> str:
    bucket = next(b["Name"] for b in stack.client("s3").list_buckets()["Buckets"] if "import" in b["Name"])
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    return f"s3://{bucket}/{key}"


def rows(count: int, quantity: Any = lambda n: n % 97, start: int = 0) -> list[str]:
    return [json.dumps({"product_id": f"e2e-{n:06d}", "quantity": quantity(n)}) for n in range(start, start + count)]


def wait_for(
    stack: RunningStack, location_id: str, import_id: str, until: Any, seconds: float = WAIT_S
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, record = stack.api.call("GET", f"/locations/{location_id}/stock-imports/{import_id}")
        if status == 503 and record["error"]["code"] == "temporarily_unavailable":
            time.sleep(0.25)  # the service says to try again, and a client would (seen once, after a kill)
            continue
        assert status == 200, record
        if until(record):
            return record
        time.sleep(0.25)
    raise AssertionError(f"import {import_id} did not get there in {seconds} s: {record}")


def finished(record: dict[str, Any]) -> bool:
    return record["status"] in ("completed", "failed")


def soh(stack: RunningStack, location_id: str, product_id: str) -> int:
    status, body = stack.api.call("GET", f"/locations/{location_id}/stock/{product_id}")
    assert status == 200, body
    return int(body["stock_on_hand"])


def all_stock(stack: RunningStack, location_id: str) -> dict[str, int]:
    figures: dict[str, int] = {}
    path = f"/locations/{location_id}/stock?limit=1000"
    while path:
        status, page = stack.api.call("GET", path)
        assert status == 200, page
        for item in page["items"]:
            assert item["product_id"] not in figures
            figures[item["product_id"]] = item["stock_on_hand"]
        path = f"/locations/{location_id}/stock?limit=1000&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    return figures


def post_import(stack: RunningStack, location_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    return stack.api.call("POST", f"/locations/{location_id}/stock-imports", body)


def test_a_file_import_completes_a_full_count_zeroes_what_it_omits_and_a_repeat_changes_nothing(
    stack: RunningStack,
) -> None:
    source = upload(stack, "uploads/e2e-initial.jsonl", rows(ROWS))
    request = {"import_id": "e2e-initial", "kind": "initial", "location_type": "store", "source": source}
    assert post_import(stack, "e2e-imports", request)[0] == 202

    done = wait_for(stack, "e2e-imports", "e2e-initial", finished)

    assert (done["status"], done["counts"]["rows"], done["counts"]["applied"]) == ("completed", ROWS, ROWS)
    assert [soh(stack, "e2e-imports", f"e2e-{n:06d}") for n in (0, 96, 12_345, ROWS - 1)] == [
        0,
        96,
        12_345 % 97,
        (ROWS - 1) % 97,
    ]

    status, again = post_import(stack, "e2e-imports", request)
    assert (status, again["status"], again["counts"]) == (200, "completed", done["counts"])

    count = upload(stack, "uploads/e2e-count.jsonl", rows(ROWS - 1_000, quantity=lambda n: 1, start=1_000))
    assert (
        post_import(stack, "e2e-imports", {"import_id": "e2e-count", "kind": "full_count", "source": count})[0] == 202
    )
    counted = wait_for(stack, "e2e-imports", "e2e-count", finished)
    assert counted["status"] == "completed"
    # e2e-000000 to e2e-000999 are omitted; those with n % 97 == 0 held no stock
    assert counted["counts"] == {"rows": ROWS - 1_000, "applied": ROWS - 1_000, "zeroed": 1_000 - 11}
    assert [soh(stack, "e2e-imports", f"e2e-{n:06d}") for n in (5, 999, 1_000, ROWS - 1)] == [0, 0, 1, 1]
    explained = stack.api.call("GET", "/locations/e2e-imports/stock/e2e-000005")[1]
    assert explained["stock_locations"][0]["base"]["import_id"] == "e2e-count"


def test_a_file_with_one_bad_row_near_its_end_is_rejected_with_that_line_and_shows_nothing(stack: RunningStack) -> None:
    before = upload(stack, "uploads/e2e-before.jsonl", rows(10))
    post_import(
        stack, "e2e-bad-file", {"import_id": "before", "kind": "initial", "location_type": "store", "source": before}
    )
    wait_for(stack, "e2e-bad-file", "before", finished)
    lines = rows(ROWS, quantity=lambda n: 7)
    lines[ROWS - 10] = json.dumps({"product_id": f"e2e-{ROWS - 10:06d}", "quantity": 2.5})
    source = upload(stack, "uploads/e2e-bad.jsonl", lines)

    assert post_import(stack, "e2e-bad-file", {"import_id": "bad", "kind": "full_count", "source": source})[0] == 202
    failed = wait_for(stack, "e2e-bad-file", "bad", finished)

    assert failed["status"] == "failed"
    assert [(e["line"], e["code"]) for e in failed["errors"]] == [(ROWS - 9, "invalid_quantity")]
    assert [soh(stack, "e2e-bad-file", f"e2e-{n:06d}") for n in (3, 9, 20, ROWS - 1)] == [3, 9, 0, 0]
    assert len(all_stock(stack, "e2e-bad-file")) == 10


def _import_worker_pids(stack: RunningStack) -> list[int]:
    """This stack's import worker processes: those below its process running in the worker's folder.
    Only its own: under `make test` each test process runs a stack of its own from the same folder,
    and killing the other's workers lost an import of theirs to a 30-minute visibility timeout."""
    pids = []
    for pid in descendants(stack.pid):
        with contextlib.suppress(OSError):
            if Path(os.readlink(f"/proc/{pid}/cwd")) == WORKER_DIR:
                pids.append(pid)
    return pids


def test_an_import_killed_after_a_chunk_resumes_to_the_state_of_one_clean_import(stack: RunningStack) -> None:
    """Given the same file imported cleanly at one store, when the worker running it at another
    store is killed after a random checkpoint and the work is delivered again (as the queue does
    after the visibility timeout), then both stores hold exactly the same stock."""
    lines = rows(KILL_ROWS, quantity=lambda n: (n * 7) % 1_000)
    source = upload(stack, "uploads/e2e-resume.jsonl", lines)
    post_import(
        stack, "e2e-clean", {"import_id": "same-file", "kind": "initial", "location_type": "store", "source": source}
    )
    clean = wait_for(stack, "e2e-clean", "same-file", finished)
    assert clean["status"] == "completed"

    post_import(
        stack, "e2e-killed", {"import_id": "same-file", "kind": "initial", "location_type": "store", "source": source}
    )
    checkpoint = random.randint(1, KILL_ROWS // 10_000) * 5_000  # in the first half of the file
    wait_for(stack, "e2e-killed", "same-file", lambda r: r["written_through_line"] >= checkpoint)
    killed = _import_worker_pids(stack)
    assert killed, "no import worker process found"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    interrupted = stack.api.call("GET", "/locations/e2e-killed/stock-imports/same-file")[1]
    assert interrupted["status"] == "running"
    assert soh(stack, "e2e-killed", "e2e-000001") == 0  # nothing visible while it runs

    stack.client("sqs").send_message(
        QueueUrl=stack.queue_url("ImportQueue"),
        MessageBody=json.dumps({"location_id": "e2e-killed", "import_id": "same-file"}),
    )
    resumed = wait_for(stack, "e2e-killed", "same-file", finished)

    assert resumed["status"] == "completed"
    assert resumed["counts"] == clean["counts"]
    assert all_stock(stack, "e2e-killed") == all_stock(stack, "e2e-clean")
