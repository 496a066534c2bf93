"""The abandoned-requests sweep's imports half, through the real handlers on the local backends:
import starts stopped at a write (faults injected at the DynamoDB client, tests/faults.py), then the
scheduled function run with the functions' clock moved on past the grace."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.client import BaseClient

from inventory import wiring
from inventory.adapters.dynamodb.keys import Key, import_key, location_key
from inventory.models import IMPORT_START_ABANDONED_AFTER
from local.stack import LocalAws
from tests.conftest import FakeContext, http_event, load_handler
from tests.faults import Crash, Faults, item_key
from tests.integration.conftest import shared_repository
from tests.integration.test_event_files import allowed_actions
from tests.integration.test_failure_paths import import_steps

GRACE = int(IMPORT_START_ABANDONED_AFTER.total_seconds() // 60)  # minutes

pytestmark = pytest.mark.integration


def call(function: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = load_handler(function).lambda_handler(http_event(method, path, body), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def body(import_id: str = "load") -> dict[str, Any]:
    return {
        "import_id": import_id,
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": "a", "quantity": 3}],
    }


def write_to(key: Key) -> Any:
    """Matches the write of one item of the location's partition: its claim (the location) or a record."""

    def match(params: Mapping[str, Any]) -> bool:
        return item_key(params) == (key["pk"], key["sk"])

    return match


def stopped_start(faults: Faults, location: str, after: str) -> None:
    """POST an import that stops (the function ends) right after its claim or its record."""
    operation, key = (
        ("UpdateItem", location_key(location)) if after == "claim" else ("PutItem", import_key(location, "load"))
    )
    armed = faults.inject(operation, "crash", when="after", match=write_to(key))
    with pytest.raises(Crash):
        call("stock_imports", "POST", f"/locations/{location}/stock-imports", body())
    faults.disarm()
    assert armed.fired == 1


@contextmanager
def clock_moved_on(minutes: float) -> Iterator[None]:
    """The deployed functions' clock, `minutes` ahead of now."""
    real = wiring.SystemClock.now
    wiring.SystemClock.now = lambda self: datetime.now(UTC) + timedelta(minutes=minutes)  # type: ignore[method-assign]
    try:
        yield
    finally:
        wiring.SystemClock.now = real  # type: ignore[method-assign]


def sweep(minutes_later: float) -> dict[str, int]:
    with clock_moved_on(minutes_later):
        result = load_handler("abandoned_requests").lambda_handler({}, FakeContext(remaining_ms=60_000))
    assert isinstance(result, dict)
    return result


def status_of(location: str, import_id: str = "load") -> tuple[int, str | None, list[str]]:
    status, record = call("stock_imports", "GET", f"/locations/{location}/stock-imports/{import_id}")
    return status, record.get("status"), [e["code"] for e in record.get("errors", [])]


def takes_a_new_import(local_aws: LocalAws, location: str, import_id: str) -> tuple[int, str]:
    """POST another import at the location: 202, or 409 and its code. Its step is taken off the
    queue (nobody runs it here)."""
    status, answer = call("stock_imports", "POST", f"/locations/{location}/stock-imports", body(import_id))
    if status == 202:
        assert import_steps(local_aws, f'"location_id":"{location}"')
        return status, answer["status"]
    return status, answer["error"]["code"]


def test_starts_stopped_before_the_worker_has_them_are_failed_once_abandoned_and_the_rest_left(
    local_aws: LocalAws, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given four stores whose import start stopped after its claim (no record), stopped after its
    record (accepted, never queued), completed (queued: its step waits in the queue), and whose
    import is running, when the scheduled sweep runs a minute before the grace, then a minute after,
    then the first run leaves all four; the second fails the two never handed to the worker with
    `not_started`, and their stores take a new import, while a late repeat of their request answers
    the import failed; the queued and the running import are left, their stores claimed. The
    sweep's calls are all allowed by its function's policy."""
    claim_only, record_only, queued, running = (f"sweep-{name}" for name in ("claim", "record", "queued", "running"))
    stopped_start(faults, claim_only, after="claim")
    stopped_start(faults, record_only, after="record")
    for location in (queued, running):
        assert call("stock_imports", "POST", f"/locations/{location}/stock-imports", body())[0] == 202
        assert import_steps(local_aws, f'"location_id":"{location}"')  # off the queue: nobody runs it
    shared_repository().record_progress(running, "load", written_through_line=0)  # the worker's first step

    early = sweep(minutes_later=GRACE - 1)
    blocked_early = [takes_a_new_import(local_aws, loc, "early")[1] for loc in (claim_only, record_only)]
    calls: set[tuple[str, str]] = set()
    make_api_call = BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        target = f"index/{params['IndexName']}" if params.get("IndexName") else "table"
        calls.add((f"{client.meta.service_model.signing_name}:{operation}", target))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    late = sweep(minutes_later=GRACE + 1)
    monkeypatch.undo()

    assert early["failed_imports"] == 0
    assert blocked_early == ["import_in_progress", "import_in_progress"]
    assert late["failed_imports"] >= 2  # ours, and any a test before this one left
    for location in (claim_only, record_only):
        assert status_of(location) == (200, "failed", ["not_started"])
        last = call("locations", "GET", f"/locations/{location}")[1]["last_import"]
        assert (last["import_id"], last["status"]) == ("load", "failed")
        repeated, answer = call("stock_imports", "POST", f"/locations/{location}/stock-imports", body())
        assert (repeated, answer["status"]) == (200, "failed")
        assert takes_a_new_import(local_aws, location, "next") == (202, "accepted")
    assert status_of(queued) == (200, "accepted", [])
    assert status_of(running) == (200, "running", [])
    for location in (queued, running):
        assert takes_a_new_import(local_aws, location, "next") == (409, "import_in_progress")
    allowed = allowed_actions("abandoned_requests")
    assert calls - allowed == set(), "add these to AbandonedRequestsFunction's policy"
    assert {("dynamodb:PutItem", "table"), ("dynamodb:Query", "index/gsi1")} <= calls
    assert sweep(minutes_later=GRACE + 1)["failed_imports"] == 0  # nothing left to fail


def test_a_location_whose_import_start_stopped_after_its_claim_takes_imports_again_after_the_sweep(
    local_aws: LocalAws, faults: Faults
) -> None:
    """Given a store whose import start stopped right after its claim and was never repeated (every
    later import used to be refused with import_in_progress, and the switch, for ever), when the
    sweep runs just past the grace, then the store takes a new import."""
    location = "sweep-defect"
    stopped_start(faults, location, after="claim")
    refused = takes_a_new_import(local_aws, location, "refused")

    sweep(minutes_later=GRACE + 1)

    assert refused == (409, "import_in_progress")
    assert takes_a_new_import(local_aws, location, "after-sweep") == (202, "accepted")


SWEEPERS = 4


class Listing:
    """The repository as the sweep sees it, listing only the claims of `locations`: other tests'
    claims stay as they are, and the writes counted are these locations'."""

    def __init__(self, locations: list[str]) -> None:
        self._repo = shared_repository()
        self._locations = locations

    def claimed_locations(self) -> Any:
        return (claimed for claimed in self._repo.claimed_locations() if claimed.location_id in self._locations)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)


class PastTheGrace:
    """The sweep's clock, just past the grace: every start stopped just now is abandoned by then."""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(minutes=GRACE + 1)


def _sweep_at_once(locations: list[str], barrier: Any) -> list[str]:
    from inventory.services.abandoned import ImportSweep

    sweep = ImportSweep(Listing(locations), PastTheGrace())  # type: ignore[arg-type]
    barrier.wait()
    return [record.location_id for record in sweep.fail_abandoned()]


def test_sweeps_running_at_once_fail_each_abandoned_start_and_release_its_store(
    local_aws: LocalAws, faults: Faults
) -> None:
    """Given a store whose start stopped after its claim and one whose start stopped after its
    record, when four sweeps run at once (in processes of their own, on dynalite), then every sweep
    run succeeds, the unrecorded import's failed record is put by exactly one of them, and both
    imports end failed with their stores released: the state of one sweep."""
    claim_only, record_only = "race-sweep-claim", "race-sweep-record"
    stopped_start(faults, claim_only, after="claim")
    stopped_start(faults, record_only, after="record")

    context = multiprocessing.get_context("spawn")  # fresh interpreters, as Lambda sandboxes are
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(SWEEPERS, mp_context=context) as pool:
        barrier = manager.Barrier(SWEEPERS)
        runs = list(pool.map(_sweep_at_once, [[claim_only, record_only]] * SWEEPERS, [barrier] * SWEEPERS))

    reported = [location for run in runs for location in run]
    # The record put for the unrecorded import is conditioned on there being none: one sweep puts it.
    # A sweep that lost the race to fail the recorded one finds it failed and finishes its release,
    # and reports it too: the state, not the report, is what must be one sweep's.
    assert reported.count(claim_only) == 1
    assert reported.count(record_only) >= 1
    for location in (claim_only, record_only):
        assert status_of(location) == (200, "failed", ["not_started"])
        last = call("locations", "GET", f"/locations/{location}")[1]["last_import"]
        assert (last["import_id"], last["status"]) == ("load", "failed")
        assert takes_a_new_import(local_aws, location, "next") == (202, "accepted")
