"""A Hypothesis state machine for the switch, checked against a model written for the test.

The model below imports nothing from the service's rules: it restates SPEC.md sections 1 and 4
(who may switch, when, and that it happens once). It drives any repository: the in-memory fake
(tests/unit) and the DynamoDB adapter on the local backend (tests/integration).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from inventory.errors import ImportInProgress, InventoryError
from inventory.models import (
    CountReason,
    CountStatus,
    ImportKind,
    ImportStatus,
    InventoryMaster,
    LocationChanges,
    LocationType,
    OutboxEvent,
)
from inventory.models.counts import CycleCount
from inventory.models.imports import ImportCounts, ImportRecord
from inventory.services.locations import MasterSwitchService
from tests.unit.fakes import FixedClock

WINDOW_MINUTES = 15


@dataclass
class ModelLocation:
    kind: str
    master: str = "erp"
    switched_at: datetime | None = None
    baseline_at: datetime | None = None
    running: tuple[str, str] | None = None  # (import id, kind)
    mispicks: set[str] = field(default_factory=set)

    def refusal(self, now: datetime) -> str | None:
        """What a request for platform answers, as the spec says."""
        if self.master == "platform":
            return None
        if self.kind == "dc":
            return "location_is_dc"
        too_old = self.baseline_at is None or (now - self.baseline_at).total_seconds() > WINDOW_MINUTES * 60
        if too_old or self.running or self.mispicks:
            return "not_ready"
        return None


class SwitchMachine(RuleBasedStateMachine):
    """Subclasses set `make_repository` and `pending_events`."""

    make_repository: Callable[[], object]
    pending_events: Callable[[object, str], list[OutboxEvent]]

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock()
        self.repo = type(self).make_repository()
        self.service = MasterSwitchService(self.repo, self.clock, WINDOW_MINUTES)  # type: ignore[arg-type]
        run = uuid.uuid4().hex[:8]
        self.ids = {"store": f"store-{run}", "dc": f"dc-{run}"}
        self.model = {kind: ModelLocation(kind) for kind in self.ids}
        for kind, location_id in self.ids.items():
            self.service.put(location_id, LocationChanges(type=LocationType(kind)))

    locations = st.sampled_from(["store", "dc"])

    @rule(which=locations, kind=st.sampled_from(list(ImportKind)))
    def begin_import(self, which: str, kind: ImportKind) -> None:
        import_id = uuid.uuid4().hex
        record = ImportRecord(
            location_id=self.ids[which],
            import_id=import_id,
            kind=kind,
            status=ImportStatus.ACCEPTED,
            content_hash=import_id,
            accepted_at=self.clock.now(),
        )
        expected_in_progress = self.model[which].running is not None
        try:
            self.repo.begin_import(record)  # type: ignore[attr-defined]
        except ImportInProgress:
            assert expected_in_progress
            return
        assert not expected_in_progress
        self.model[which].running = (import_id, kind.value)

    @precondition(lambda self: any(m.running for m in self.model.values()))
    @rule(data=st.data(), succeed=st.booleans())
    def finish_import(self, data: st.DataObject, succeed: bool) -> None:
        self.finish_import_of(data.draw(st.sampled_from([k for k, m in self.model.items() if m.running])), succeed)

    def finish_import_of(self, which: str, succeed: bool) -> None:
        model = self.model[which]
        assert model.running is not None
        import_id, kind = model.running
        if succeed:
            self.repo.complete_import(self.ids[which], import_id, completed_at=self.clock.now(), counts=ImportCounts())  # type: ignore[attr-defined]
            if kind in ("initial", "full_count"):
                model.baseline_at = self.clock.now()
        else:
            self.repo.fail_import(self.ids[which], import_id, failed_at=self.clock.now(), errors=[])  # type: ignore[attr-defined]
        model.running = None

    @precondition(lambda self: self.model["store"].running is None)
    @rule(kind=st.sampled_from([ImportKind.INITIAL, ImportKind.FULL_COUNT]))
    def store_imports_in_one_go(self, kind: ImportKind) -> None:
        """The recommended path (import, then switch), so that generated histories reach the switch."""
        self.begin_import("store", kind)
        self.finish_import_of("store", succeed=True)

    @rule(which=locations)
    def open_mispick_count(self, which: str) -> None:
        count_id = uuid.uuid4().hex
        self.repo.open_cycle_count(  # type: ignore[attr-defined]
            CycleCount(
                location_id=self.ids[which],
                count_id=count_id,
                reason=CountReason.MISPICK,
                product_ids=["p1"],
                content_hash=count_id,
                opened_at=self.clock.now(),
            )
        )
        self.model[which].mispicks.add(count_id)

    @precondition(lambda self: any(m.mispicks for m in self.model.values()))
    @rule(data=st.data(), outcome=st.sampled_from([CountStatus.COMPLETED, CountStatus.CANCELLED]))
    def close_mispick_count(self, data: st.DataObject, outcome: CountStatus) -> None:
        which = data.draw(st.sampled_from([k for k, m in self.model.items() if m.mispicks]))
        count_id = data.draw(st.sampled_from(sorted(self.model[which].mispicks)))
        self.repo.close_cycle_count(self.ids[which], count_id, status=outcome, closed_at=self.clock.now())  # type: ignore[attr-defined]
        self.model[which].mispicks.discard(count_id)

    @rule(minutes=st.integers(min_value=0, max_value=16))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule(which=locations, wanted=st.sampled_from(["erp", "platform"]))
    def request_switch(self, which: str, wanted: str) -> None:
        model = self.model[which]
        expected = (
            ("switch_irreversible" if model.master == "platform" else None)
            if wanted == "erp"
            else model.refusal(self.clock.now())
        )
        try:
            location = self.service.switch(self.ids[which], InventoryMaster(wanted), caller="tester")
        except InventoryError as error:
            assert error.code == expected, (error.code, expected)
            return
        assert expected is None, f"expected {expected}, got a switch"
        if wanted == "platform" and model.master == "erp":
            model.master, model.switched_at = "platform", self.clock.now()
        assert location.inventory_master.value == model.master
        assert location.master_switched_at == model.switched_at

    @invariant()
    def master_matches_the_model_and_the_switch_happened_once(self) -> None:
        for which, location_id in self.ids.items():
            location = self.service.get(location_id)
            assert location.inventory_master.value == self.model[which].master
            events = type(self).pending_events(self.repo, location_id)
            assert len(events) == (1 if self.model[which].master == "platform" else 0)
