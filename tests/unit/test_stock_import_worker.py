"""The stock import worker's service: each import queue message dispatched on its type, with its
outcome."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.errors import InvalidInput, TemporarilyUnavailable
from inventory.messages.import_work import ImportStep, LayerPurge, parse_import_work
from inventory.models import ImportKind, ImportStatus
from inventory.models.imports import StockRow
from inventory.services.imports import ImportRequest
from inventory.services.stock_import_worker import StockImportWorker
from tests.unit.test_import_service import World


def accepted(world: World, import_id: str = "i1") -> ImportStep:
    items = [StockRow(product_id="a", stock_location="main", quantity=3)]
    world.imports.accept("s1", ImportRequest(import_id, ImportKind.INITIAL, items=items), "tester")
    message = world.queue.messages.pop(0)
    return ImportStep(location_id=str(message["location_id"]), import_id=str(message["import_id"]))


def test_a_step_runs_its_import_and_a_test_event_does_nothing() -> None:
    world = World()
    worker = StockImportWorker(world.imports)

    assert worker.process(accepted(world), lambda: 10**9).applied
    assert worker.process(parse_import_work('{"Event": "s3:TestEvent"}'), lambda: 10**9).applied

    assert world.imports.status("s1", "i1").status is ImportStatus.COMPLETED
    assert world.soh("a") == 3


def test_a_purge_message_is_dispatched_to_the_purge_and_a_bad_one_is_refused() -> None:
    world = World()
    worker = StockImportWorker(world.imports)
    worker.process(accepted(world), lambda: 10**9)
    purge = parse_import_work('{"location_id": "s1", "import_id": "i1", "layers": [7]}')

    assert isinstance(purge, LayerPurge)
    assert worker.process(purge, lambda: 10**9).applied
    assert world.queue.messages == [{**purge.model_dump(), "released_seen": True}]  # waits one more delay
    with pytest.raises(InvalidInput):
        parse_import_work('{"location_id": "s1", "import_id": "i1", "layers": []}')


def test_a_message_that_failed_parsing_is_refused_for_good() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_import_work('{"location_id": "s1"}')

    outcome = StockImportWorker(World().imports).process(raised.value, lambda: 10**9)

    assert (outcome.applied, outcome.final, outcome.reason.code) == (False, True, "validation_error")


def test_a_step_that_fails_for_now_is_retried_and_giving_up_fails_its_import(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    worker, step = StockImportWorker(world.imports), accepted(world)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise TemporarilyUnavailable("S3 is down")

    monkeypatch.setattr(world.files, "head", unreachable)
    outcome = worker.process(step, lambda: 10**9)

    assert (outcome.applied, outcome.final) == (False, False)
    assert world.imports.status("s1", "i1").status is not ImportStatus.FAILED  # delivered again: still running

    last = worker.process(step, lambda: 10**9, last_delivery=True)

    assert (last.applied, last.final) == (False, False)  # and so to the dead-letter queue, with the reason
    failed = world.imports.status("s1", "i1")
    assert (failed.status, failed.errors[0]["code"]) == (ImportStatus.FAILED, "abandoned")
    assert "S3 is down" in failed.errors[0]["message"]
