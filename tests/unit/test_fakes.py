"""The in-memory repository fails on request: once, at the next call of one method, before any
effect or after some of its writes (what it does otherwise is the contract suite's business:
tests/integration/test_repository_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inventory.errors import TemporarilyUnavailable
from inventory.models import ImportKind, ImportStatus, LocationChanges, LocationType
from inventory.models.imports import ImportCounts, ImportRecord
from tests.unit.fakes import MemoryRepository

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class Stopped(BaseException):
    """A function stopped in the middle (no `except Exception` catches it)."""


def running_import(repo: MemoryRepository) -> None:
    repo.put_location("s1", LocationChanges(type=LocationType.STORE), NOW)
    record = ImportRecord(
        location_id="s1",
        import_id="i1",
        kind=ImportKind.INITIAL,
        status=ImportStatus.ACCEPTED,
        content_hash="h",
        accepted_at=NOW,
    )
    repo.begin_import(record)


def test_the_next_call_fails_once_before_any_effect() -> None:
    """Given a repository told to fail the next put_location,
    when a location is put twice,
    then the first put raises the error and leaves nothing, and the second creates the location."""
    repo = MemoryRepository()
    repo.fail_next("put_location", TemporarilyUnavailable("throttled"))

    with pytest.raises(TemporarilyUnavailable):
        repo.put_location("s1", LocationChanges(type=LocationType.STORE), NOW)
    assert repo.get_location("s1") is None
    _, created = repo.put_location("s1", LocationChanges(type=LocationType.STORE), NOW)

    assert created


def test_a_call_can_stop_between_its_writes() -> None:
    """Given a running import and a repository told to stop complete_import after its first write,
    when the import is completed,
    then the import record says completed and the location is still claimed, as after a crash there."""
    repo = MemoryRepository()
    running_import(repo)
    repo.fail_next("complete_import", Stopped(), after_writes=1)

    with pytest.raises(Stopped):
        repo.complete_import("s1", "i1", completed_at=NOW, counts=ImportCounts())

    assert repo.get_import("s1", "i1").status is ImportStatus.COMPLETED  # type: ignore[union-attr]
    assert repo.get_location("s1").running_import_id == "i1"  # type: ignore[union-attr]


def test_an_answer_can_be_lost_after_the_last_write() -> None:
    """Given a repository told to fail put_location after more writes than it makes,
    when a location is put,
    then the error comes as it returns, and the location is there (a timeout after the write)."""
    repo = MemoryRepository()
    repo.fail_next("put_location", TemporarilyUnavailable("timed out"), after_writes=5)

    with pytest.raises(TemporarilyUnavailable):
        repo.put_location("s1", LocationChanges(type=LocationType.STORE), NOW)

    assert repo.get_location("s1") is not None


def test_only_methods_of_the_repository_can_be_told_to_fail() -> None:
    """Given a repository, when told to fail a method it does not have (or one of its own parts),
    then it refuses at once, rather than never failing."""
    repo = MemoryRepository()

    for name in ("put_locations", "_finish"):
        with pytest.raises(ValueError, match="not a method"):
            repo.fail_next(name, TemporarilyUnavailable("x"))
