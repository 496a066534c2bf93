"""Locations, their readiness for the switch, and the irreversible switch itself."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from inventory.errors import LocationIsDc, NotFound, NotReady, SwitchIrreversible
from inventory.messages import DetailType
from inventory.models import (
    InventoryMaster,
    Location,
    LocationChanges,
    LocationType,
    OutboxEvent,
    Page,
    Readiness,
    ReadinessReason,
    iso,
    readiness_cutoff,
)

if TYPE_CHECKING:
    from inventory.ports import Clock, LocationRepository


class LocationService:
    def __init__(self, repository: LocationRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    def put(self, location_id: str, changes: LocationChanges) -> tuple[Location, bool]:
        """Create or update; (location, created). A request that changes nothing writes nothing
        (the location's `updated_at` stays what it was)."""
        current = self._repository.get_location(location_id)
        if current is not None and all(
            getattr(current, field) == value for field, value in changes.model_dump(exclude_none=True).items()
        ):
            return current, False
        return self._repository.put_location(location_id, changes, self._clock.now())

    def get(self, location_id: str) -> Location:
        location = self._repository.get_location(location_id)
        if location is None:
            raise NotFound(f"location {location_id!r} does not exist")
        return location

    def list(self, limit: int, cursor: str | None) -> Page[Location]:
        return self._repository.list_locations(limit, cursor)


class MasterSwitchService(LocationService):
    """The readiness of a location for the switch, and the switch, within the deployment's window."""

    def __init__(self, repository: LocationRepository, clock: Clock, readiness_window_minutes: int) -> None:
        super().__init__(repository, clock)
        self._window = readiness_window_minutes

    def readiness(self, location_id: str) -> Readiness:
        return self._readiness(self.get(location_id), self._clock.now())

    def switch(self, location_id: str, target: InventoryMaster, caller: str) -> Location:
        """Move a store to platform master, once; answer what is already true without writing."""
        location = self.get(location_id)
        if target is InventoryMaster.ERP:
            if location.inventory_master is InventoryMaster.PLATFORM:
                raise SwitchIrreversible(
                    f"location {location_id!r} has been platform master since "
                    f"{iso(location.master_switched_at) if location.master_switched_at else 'its switch'}; "
                    "the switch can never be undone"
                )
            return location
        if location.inventory_master is InventoryMaster.PLATFORM:
            return location

        now = self._clock.now()
        self._refuse_unless_ready(location, now)
        event = OutboxEvent.of(
            DetailType.MASTER_SWITCHED,
            location_id,
            now,
            {
                "inventory_master": InventoryMaster.PLATFORM.value,
                "previous_inventory_master": InventoryMaster.ERP.value,
                "master_switched_at": iso(now),
                "switched_by": caller,
            },
        )
        switched = self._repository.switch_to_platform(
            location_id,
            now=now,
            caller=caller,
            baseline_cutoff=readiness_cutoff(now, self._window),
            event=event,
            baseline_seq=location.baseline_seq(),
        )
        if switched is not None:
            return switched
        # The guarded write was refused: the location changed since it was read. Say why.
        current = self.get(location_id)
        if current.inventory_master is InventoryMaster.PLATFORM:
            return current
        self._refuse_unless_ready(current, now)
        raise NotReady("the location changed while switching; check readiness and try again")

    def _refuse_unless_ready(self, location: Location, now: datetime) -> None:
        if location.type is LocationType.DC:
            raise LocationIsDc(f"location {location.location_id!r} is a DC: DCs always keep the ERP as master")
        readiness = self._readiness(location, now)
        if not readiness.ready:
            raise NotReady(
                f"location {location.location_id!r} is not ready for the switch",
                details=[reason.model_dump() for reason in readiness.reasons],
            )

    def _readiness(self, location: Location, now: datetime) -> Readiness:
        reasons: list[ReadinessReason] = []
        if location.inventory_master is InventoryMaster.ERP:
            reasons = _reasons(location, now, self._window)
        return Readiness(
            location_id=location.location_id,
            inventory_master=location.inventory_master,
            ready=not reasons,
            reasons=reasons,
            window_minutes=self._window,
            last_baseline_import_at=location.last_baseline_import_at,
        )


def _reasons(location: Location, now: datetime, window_minutes: int) -> list[ReadinessReason]:
    reasons: list[ReadinessReason] = []
    if location.type is LocationType.DC:
        reasons.append(ReadinessReason(code="location_is_dc", message="DCs always keep the ERP as master"))
    if location.last_baseline_import_at is None:
        reasons.append(
            ReadinessReason(
                code="no_completed_import",
                message="no initial or full_count import has completed for this location",
            )
        )
    elif location.last_baseline_import_at < readiness_cutoff(now, window_minutes):
        reasons.append(
            ReadinessReason(
                code="import_too_old",
                message=(
                    f"the last initial or full_count import completed at {iso(location.last_baseline_import_at)}, "
                    f"more than {window_minutes} minutes ago; import again, then switch"
                ),
            )
        )
    if location.running_import_id is not None:
        reasons.append(
            ReadinessReason(
                code="import_in_progress",
                message=f"import {location.running_import_id!r} is still running",
            )
        )
    if location.transactions_since_import():
        reasons.append(
            ReadinessReason(
                code="transactions_since_import",
                message=(
                    "inventory transactions were recorded under the ERP after the last initial or "
                    "full_count import began: neither that import nor the platform ledger reflects "
                    "them; import again, then switch"
                ),
            )
        )
    if location.open_mispick_count_ids:
        reasons.append(
            ReadinessReason(
                code="open_mispick_counts",
                message="complete or cancel the open mispick cycle counts first: "
                + ", ".join(sorted(location.open_mispick_count_ids)),
            )
        )
    return reasons
