"""Availability exports without AWS: the file's gzip members, the requests the API accepts (ids,
repeats, the locations it resolves, the scheduled export's name) and the worker's answer to a unit
whose location another export holds."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.errors import ExportIdReused, NoLocationsToExport, NotFound, TooManyExportLocations
from inventory.messages.export_work import ExportFanOut, LocationUnit, parse_export_work
from inventory.models import LocationChanges, LocationType, Page
from inventory.models.exports import AvailabilityExport, ExportMode, ExportStatus, LocationExport
from inventory.services import export_rows
from inventory.services.availability_exports import MAX_EXPORT_LOCATIONS, ExportRequest, ExportService
from inventory.services.export_rows import RowFile
from inventory.services.export_units import BUSY_RETRY_SECONDS, ExportWorker, LocationBusy
from inventory.services.outcomes import APPLIED
from tests.unit.fakes import FixedClock, MemoryQueue, MemoryRepository


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.text(max_size=40), max_size=30), max_size=8))
def test_a_file_of_members_reads_back_as_every_line_in_order_with_the_checksum_of_its_bytes(
    tmp_path_factory: pytest.TempPathFactory, members: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("rows") / "rows.jsonl.gz"
    file = RowFile(path)
    lines = [[json.dumps(text).encode() + b"\n" for text in member] for member in members]
    for member in lines:
        file.write(member)
    digest = file.close()

    data = path.read_bytes()
    assert gzip.decompress(data) == b"".join(line for member in lines for line in member)
    assert digest == hashlib.sha256(data).hexdigest()
    assert file.rows == sum(len(member) for member in members)


def test_a_file_without_rows_is_still_a_gzip_file(tmp_path: Path) -> None:
    file = RowFile(tmp_path / "empty.jsonl.gz")
    file.close()

    assert gzip.decompress((tmp_path / "empty.jsonl.gz").read_bytes()) == b""


def test_rows_are_gathered_into_members_of_about_member_bytes(tmp_path: Path) -> None:
    file = RowFile(tmp_path / "rows.jsonl.gz")
    lines = export_rows._Lines(file)
    line = b'{"product_id":"' + b"x" * 100 + b'"}\n'
    for _ in range(export_rows.MEMBER_BYTES // len(line) * 3):
        lines.add(line)
    lines.flush()
    file.close()

    members = (tmp_path / "rows.jsonl.gz").read_bytes().count(b"\x1f\x8b\x08")  # each member's magic
    assert members in (3, 4)


class Exports:
    """The export records of ExportRepository, in memory (what the service's requests need)."""

    def __init__(self) -> None:
        self.records: dict[str, AvailabilityExport] = {}

    def put_export(self, export: AvailabilityExport) -> bool:
        if export.export_id in self.records:
            return False
        self.records[export.export_id] = export
        return True

    def get_export(self, export_id: str) -> tuple[AvailabilityExport, dict[str, LocationExport]] | None:
        found = self.records.get(export_id)
        return None if found is None else (found, {})

    def list_exports(self, limit: int, cursor: str | None) -> Page[AvailabilityExport]:
        return Page(items=sorted(self.records.values(), key=lambda e: e.requested_at, reverse=True)[:limit])


def service(*locations: tuple[str, bool]) -> tuple[ExportService, Exports, MemoryQueue]:
    repo, clock = MemoryRepository(), FixedClock()
    for location_id, enabled in locations:
        repo.put_location(location_id, LocationChanges(type=LocationType.STORE, enabled=enabled), clock.now())
    exports, queue = Exports(), MemoryQueue()
    return ExportService(exports, repo, queue, clock), exports, queue  # type: ignore[arg-type]


def test_an_export_of_every_location_names_the_enabled_ones_and_sends_its_fan_out() -> None:
    exports, _, queue = service(("s2", True), ("s1", True), ("off", False))

    view, created = exports.accept(ExportRequest(mode=ExportMode.FULL), "tester")

    assert created
    assert view.export.location_ids == ("s1", "s2")
    assert (view.export.status, view.export.requested_by) == (ExportStatus.ACCEPTED, "tester")
    assert queue.messages == [ExportFanOut(export_id=view.export.export_id).model_dump()]
    assert parse_export_work(json.dumps(queue.messages[0])) == ExportFanOut(export_id=view.export.export_id)


def test_the_same_request_again_is_the_same_export_and_another_body_is_refused() -> None:
    exports, _, queue = service(("s1", True), ("s2", True))
    request = ExportRequest(mode=ExportMode.DELTA, location_ids=["s1"], export_id="x-1")
    first, _ = exports.accept(request, "tester")

    again, created = exports.accept(request, "tester")

    assert (created, again.export) == (False, first.export)
    assert len(queue.messages) == 2  # still accepted: its fan-out is sent again, which is safe
    with pytest.raises(ExportIdReused):
        exports.accept(ExportRequest(mode=ExportMode.DELTA, location_ids=["s2"], export_id="x-1"), "tester")


def test_unknown_locations_are_named_and_nothing_is_written() -> None:
    exports, records, queue = service(("s1", True))

    with pytest.raises(NotFound) as refused:
        exports.accept(ExportRequest(mode=ExportMode.FULL, location_ids=["s1", "nowhere"]), "tester")

    assert [d["message"] for d in refused.value.details] == ["nowhere"]
    assert (records.records, queue.messages) == ({}, [])


def test_an_export_covers_at_most_its_limit_of_locations_and_at_least_one() -> None:
    many = [(f"s{n:04d}", True) for n in range(MAX_EXPORT_LOCATIONS + 1)]
    with pytest.raises(TooManyExportLocations):
        service(*many)[0].accept(ExportRequest(mode=ExportMode.FULL), "tester")
    with pytest.raises(NoLocationsToExport):
        service(("off", False))[0].accept(ExportRequest(mode=ExportMode.FULL), "tester")


def test_the_schedule_asks_for_one_delta_export_per_minute_and_skips_a_retailer_with_no_location() -> None:
    exports, records, _ = service(("s1", True))
    at = datetime(2026, 12, 2, 9, 15, 42, tzinfo=UTC)

    first = exports.scheduled(at)
    again = exports.scheduled(at.replace(second=3))

    assert first is not None
    assert again is not None
    assert first.export.export_id == again.export.export_id == "scheduled-20261202T0915"
    assert (first.export.mode, first.export.requested_by, len(records.records)) == (ExportMode.DELTA, "schedule", 1)
    assert service(("off", False))[0].scheduled(at) is None


class BusyUnits:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def run(self, export_id: str, location_id: str) -> Any:
        self.runs.append((export_id, location_id))
        raise LocationBusy(f"another export of {location_id!r} is running")


def test_a_unit_whose_location_another_export_holds_comes_back_later_on_a_message_of_its_own() -> None:
    queue, units = MemoryQueue(), BusyUnits()
    work = LocationUnit(export_id="x-2", location_id="s1")

    outcome = ExportWorker(units, queue).process(work, lambda: 900_000)  # type: ignore[arg-type]

    assert outcome == APPLIED
    assert (queue.messages, queue.delays) == ([work.model_dump()], [BUSY_RETRY_SECONDS])
