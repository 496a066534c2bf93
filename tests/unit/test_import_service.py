"""ImportRunner (accepting and running imports) and StockService against in-memory ports: guards,
the pipeline, visibility."""

from __future__ import annotations

import gzip
import json

import pytest

from inventory.errors import (
    ImportIdReused,
    ImportInProgress,
    ImportKindNotAllowed,
    InvalidInput,
    NotFound,
    OpenMispickCounts,
)
from inventory.messages.import_work import LayerPurge
from inventory.models import CountReason, ImportKind, ImportStatus, InventoryMaster, LocationChanges, LocationType
from inventory.models.counts import CycleCount
from inventory.models.imports import StockRow
from inventory.services.import_runs import ImportRunner
from inventory.services.imports import ImportRequest
from inventory.services.locations import MasterSwitchService
from inventory.services.stock import StockService
from tests.unit.fakes import FixedClock, MemoryFiles, MemoryQueue, MemoryRepository


class World:
    def __init__(self, chunk_rows: int = 3) -> None:
        self.clock = FixedClock()
        self.repo = MemoryRepository()
        self.files = MemoryFiles()
        self.queue = MemoryQueue()
        self.imports = ImportRunner(self.repo, self.files, self.queue, self.clock, chunk_rows=chunk_rows)
        self.stock = StockService(self.repo)
        self.locations = MasterSwitchService(self.repo, self.clock, 15)
        self.locations.put("s1", LocationChanges(type=LocationType.STORE))

    def run_queue(self, budget_ms: int = 10**9) -> None:
        while self.queue.messages:
            message = self.queue.messages.pop(0)
            if "layers" in message:  # a purge of layers an import's ending left invisible
                self.imports.purge(LayerPurge.model_validate(message), lambda: budget_ms)
            else:
                self.imports.run(str(message["location_id"]), str(message["import_id"]), lambda: budget_ms)

    def import_inline(self, import_id: str, kind: ImportKind, rows: dict[str, int], **extra: object) -> None:
        items = [StockRow(product_id=p, stock_location="main", quantity=q) for p, q in rows.items()]
        self.imports.accept("s1", ImportRequest(import_id=import_id, kind=kind, items=items, **extra), "tester")  # type: ignore[arg-type]
        self.run_queue()

    def soh(self, product_id: str) -> int:
        return self.stock.product("s1", product_id).stock_on_hand


@pytest.fixture
def world() -> World:
    return World()


def test_an_inline_import_becomes_visible_when_it_completes(world: World) -> None:
    items = [StockRow(product_id=f"p{n}", stock_location="main", quantity=n) for n in range(7)]
    record, created = world.imports.accept("s1", ImportRequest("i1", ImportKind.INITIAL, items=items), "tester")

    assert created
    assert record.status is ImportStatus.ACCEPTED
    assert world.soh("p5") == 0
    assert world.stock.product("s1", "p5").stock_locations == []

    world.run_queue()

    status = world.imports.status("s1", "i1")
    assert status.status is ImportStatus.COMPLETED
    assert (status.counts.rows, status.counts.applied) == (7, 7)
    assert [world.soh(f"p{n}") for n in range(7)] == list(range(7))
    assert [e.detail_type for e in world.repo.pending_events("s1")] == ["Stock Imported"]


def test_the_same_request_again_is_the_same_import_and_other_content_is_refused(world: World) -> None:
    request = ImportRequest(
        "i1", ImportKind.PARTIAL, items=[StockRow(product_id="p", stock_location="main", quantity=1)]
    )
    world.imports.accept("s1", request, "tester")
    world.run_queue()

    again, created = world.imports.accept("s1", request, "tester")
    assert not created
    assert again.status is ImportStatus.COMPLETED
    assert world.queue.messages == []
    other = ImportRequest("i1", ImportKind.PARTIAL, items=[StockRow(product_id="p", stock_location="main", quantity=2)])
    with pytest.raises(ImportIdReused):
        world.imports.accept("s1", other, "tester")


def test_a_full_count_zeroes_what_it_omits_and_a_partial_changes_only_its_rows(world: World) -> None:
    world.import_inline("i1", ImportKind.INITIAL, {"a": 5, "b": 6, "c": 7})
    world.import_inline("i2", ImportKind.PARTIAL, {"b": 1})
    assert [world.soh(p) for p in "abc"] == [5, 1, 7]

    world.import_inline("i3", ImportKind.FULL_COUNT, {"c": 9, "d": 0})

    assert [world.soh(p) for p in "abc"] == [0, 0, 9]
    assert world.imports.status("s1", "i3").counts.zeroed == 2  # a and b held stock; c is listed
    explained = world.stock.product("s1", "a")
    assert explained.stock_locations[0].base is not None
    assert explained.stock_locations[0].base.import_id == "i3"


def test_a_file_with_one_bad_row_changes_nothing_and_names_the_line(world: World) -> None:
    world.import_inline("i1", ImportKind.INITIAL, {"a": 5})
    lines = [json.dumps({"product_id": f"p{n}", "quantity": 1}) for n in range(10)]
    lines[8] = json.dumps({"product_id": "p8", "quantity": -1})
    uri = world.files.put("drop/bad.jsonl", "\n".join(lines).encode())
    world.imports.accept("s1", ImportRequest("i2", ImportKind.FULL_COUNT, source=uri), "tester")
    world.run_queue()

    status = world.imports.status("s1", "i2")
    assert status.status is ImportStatus.FAILED
    assert [(e["line"], e["code"]) for e in status.errors] == [(9, "quantity_out_of_range")] or [
        e["line"] for e in status.errors
    ] == [9]
    assert world.soh("a") == 5
    assert world.soh("p0") == 0
    assert world.repo.get_location("s1").running_import_id is None  # type: ignore[union-attr]


def test_a_gzip_csv_file_imports_like_json_lines(world: World) -> None:
    uri = world.files.put("drop/count.csv.gz", gzip.compress(b"product_id,quantity\r\nx,3\r\ny,4\r\n"))

    world.imports.accept("s1", ImportRequest("i1", ImportKind.INITIAL, source=uri), "tester")
    world.run_queue()

    assert (world.soh("x"), world.soh("y")) == (3, 4)


def test_an_import_interrupted_after_a_chunk_resumes_from_its_checkpoint(world: World) -> None:
    """Given chunks of 3 rows and too little time after the first, the worker hands the rest on;
    the final state equals one clean import and nothing is written twice out of order."""
    items = [StockRow(product_id=f"p{n}", stock_location="main", quantity=n + 1) for n in range(10)]
    world.imports.accept("s1", ImportRequest("i1", ImportKind.INITIAL, items=items), "tester")
    message = world.queue.messages.pop(0)

    status = world.imports.run(str(message["location_id"]), str(message["import_id"]), lambda: 0)

    assert status is ImportStatus.RUNNING
    assert world.imports.status("s1", "i1").written_through_line == 3
    assert world.soh("p0") == 0  # nothing visible yet
    assert len(world.queue.messages) == 1  # the rest, handed on
    world.run_queue(budget_ms=0)
    assert [world.soh(f"p{n}") for n in range(10)] == [n + 1 for n in range(10)]
    assert world.imports.status("s1", "i1").counts.applied == 10


def test_guards_refuse_before_anything_is_written(world: World) -> None:
    items = [StockRow(product_id="p", stock_location="main", quantity=1)]
    with pytest.raises(NotFound):
        world.imports.accept("nowhere", ImportRequest("i1", ImportKind.INITIAL, items=items), "tester")

    world.repo.open_cycle_count(
        CycleCount(
            location_id="s1",
            count_id="c1",
            reason=CountReason.MISPICK,
            product_ids=["p"],
            content_hash="h",
            opened_at=world.clock.now(),
        )
    )
    with pytest.raises(OpenMispickCounts):
        world.imports.accept("s1", ImportRequest("i1", ImportKind.INITIAL, items=items), "tester")
    world.imports.accept("s1", ImportRequest("i1", ImportKind.INITIAL, items=items, force=True), "tester")
    with pytest.raises(ImportInProgress):
        world.imports.accept("s1", ImportRequest("i2", ImportKind.PARTIAL, items=items, force=True), "tester")
    duplicate = [*items, StockRow(product_id="p", stock_location="main", quantity=2)]
    world.run_queue()
    with pytest.raises(InvalidInput) as refused:
        world.imports.accept("s1", ImportRequest("i3", ImportKind.PARTIAL, items=duplicate, force=True), "tester")
    assert refused.value.details[0]["field"] == "body.items[1]"
    assert world.repo.get_import("s1", "i3") is None


def test_under_platform_master_only_full_counts_are_accepted(world: World) -> None:
    world.import_inline("i1", ImportKind.INITIAL, {"a": 0})
    world.locations.switch("s1", InventoryMaster.PLATFORM, "tester")
    items = [StockRow(product_id="a", stock_location="main", quantity=4)]

    for kind in (ImportKind.INITIAL, ImportKind.PARTIAL):
        with pytest.raises(ImportKindNotAllowed):
            world.imports.accept("s1", ImportRequest(f"x-{kind}", kind, items=items), "tester")
    world.import_inline("i2", ImportKind.FULL_COUNT, {"a": 4})
    assert world.soh("a") == 4
    location = world.locations.get("s1")
    assert location.imports_before_switch == 1  # i1 came before the switch, i2 after: counted
    assert [v.seq for v in location.visible_imports] == [2]


def test_an_unknown_location_is_created_when_the_import_names_its_type(world: World) -> None:
    items = [StockRow(product_id="p", stock_location="display", quantity=2)]

    world.imports.accept(
        "new-dc", ImportRequest("i1", ImportKind.INITIAL, items=items, location_type=LocationType.DC), "tester"
    )
    world.run_queue()

    assert world.locations.get("new-dc").type is LocationType.DC
    stock = world.stock.product("new-dc", "p")
    assert stock.stock_on_hand == 0  # display is not salable
    assert [(f.stock_location, f.quantity, f.salable) for f in stock.stock_locations] == [("display", 2, False)]


def test_a_dropped_file_names_its_import_by_its_key(world: World) -> None:
    key = "imports/s1/initial/load-1.csv"
    world.files.objects[f"s3://imports/{key}"] = b"product_id,quantity,stock_location\nq,5,main\n"
    world.files.user_metadata[f"s3://imports/{key}"] = {"shipments-included-through": "42"}

    record = world.imports.file_dropped("imports", key)
    world.run_queue()

    assert (record.import_id, record.kind, record.shipments_included_through) == ("load-1", ImportKind.INITIAL, 42)
    assert world.soh("q") == 5
    with pytest.raises(InvalidInput):
        world.imports.file_dropped("imports", "imports/s1/weekly/x.csv")
    with pytest.raises(InvalidInput):
        world.imports.file_dropped("imports", "imports/bad#store/partial/x.csv")


def test_a_source_outside_the_import_bucket_is_refused(world: World) -> None:
    with pytest.raises(InvalidInput) as refused:
        world.imports.accept("s1", ImportRequest("i1", ImportKind.PARTIAL, source="s3://elsewhere/x.csv"), "tester")
    assert refused.value.details[0]["code"] == "not_import_bucket"


def test_the_stock_list_pages_through_every_product_once(world: World) -> None:
    world.import_inline("i1", ImportKind.INITIAL, {f"p{n:02d}": n for n in range(12)})
    world.import_inline("i2", ImportKind.PARTIAL, {"p03": 30, "zz": 1})

    seen, cursor = [], None
    while True:
        page = world.stock.page("s1", 5, cursor)
        seen += [(item.product_id, item.stock_on_hand) for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    expected = {f"p{n:02d}": n for n in range(12)} | {"p03": 30, "zz": 1}
    assert dict(seen) == expected
    assert len(seen) == len(expected)


def test_a_damaged_gzip_file_fails_the_import_instead_of_retrying_for_ever(world: World) -> None:
    whole = gzip.compress(b"product_id,quantity\n" + b"".join(b"p%d,1\n" % n for n in range(2000)))
    uri = world.files.put("drop/cut.csv.gz", whole[: len(whole) // 2])

    world.imports.accept("s1", ImportRequest("i1", ImportKind.INITIAL, source=uri), "tester")
    world.run_queue()

    status = world.imports.status("s1", "i1")
    assert status.status is ImportStatus.FAILED
    assert status.errors[-1]["code"] == "invalid_gzip"
    assert world.soh("p1") == 0


def test_a_line_with_two_errors_counts_as_one_row(world: World) -> None:
    uri = world.files.put(
        "drop/two.jsonl", b'{"product_id": "", "quantity": -1}\n{"product_id": "ok", "quantity": 1}\n'
    )

    world.imports.accept("s1", ImportRequest("i1", ImportKind.PARTIAL, source=uri), "tester")
    world.run_queue()

    status = world.imports.status("s1", "i1")
    assert (status.counts.rows, status.counts.applied) == (2, 0)
    assert [e["line"] for e in status.errors] == [1, 1]


def test_a_file_stops_being_read_at_its_100th_invalid_row(world: World) -> None:
    # Given a file of a million invalid rows
    uri = world.files.put("drop/bad.csv", b"product_id,quantity\n" + b"p,many\n" * 1_000_000)

    world.imports.accept("s1", ImportRequest("i1", ImportKind.PARTIAL, source=uri), "tester")
    world.run_queue()

    # Then the import failed with the first 100 errors, having read no further than their rows
    status = world.imports.status("s1", "i1")
    assert status.status is ImportStatus.FAILED
    assert [e["line"] for e in status.errors] == list(range(2, 102))
    assert (status.counts.rows, status.counts.applied) == (100, 0)


def test_a_gzip_bomb_fails_the_import_with_the_reason_and_changes_nothing(world: World) -> None:
    world.import_inline("i1", ImportKind.INITIAL, {"a": 2})
    member = gzip.compress(b"\n" * (64 << 20), 9)
    uri = world.files.put("drop/bomb.jsonl.gz", member * 16)  # 1 GiB of blank lines in 1 MiB

    world.imports.accept("s1", ImportRequest("i2", ImportKind.FULL_COUNT, source=uri), "tester")
    world.run_queue()

    status = world.imports.status("s1", "i2")
    assert (status.status, [e["code"] for e in status.errors]) == (ImportStatus.FAILED, ["inflation_limit"])
    assert world.soh("a") == 2
