"""GET .../inventory-master/readiness and PUT .../inventory-master: the routes and their bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from inventory import wiring
from inventory.api.http import LocationId, Reply, Request, UtcTime, answers, caller_identity, errors_for
from inventory.api.locations import LocationOut
from inventory.models import InventoryMaster, Readiness
from inventory.services.locations import MasterSwitchService
from inventory.settings import settings_of
from inventory.settings.master_switch import MasterSwitchSettings


class SwitchBody(Request):
    inventory_master: InventoryMaster


class ReasonOut(Reply):
    code: Literal[
        "location_is_dc",
        "no_completed_import",
        "import_too_old",
        "import_in_progress",
        "open_mispick_counts",
        "transactions_since_import",
    ]
    message: str


class ReadinessOut(Reply):
    location_id: str
    inventory_master: InventoryMaster
    ready: bool
    reasons: list[ReasonOut]
    window_minutes: int
    last_baseline_import_at: UtcTime | None

    @classmethod
    def of(cls, readiness: Readiness) -> ReadinessOut:
        return cls.model_validate(readiness.model_dump())


router = Router()


def master_switch_service() -> MasterSwitchService:
    """Built once, from the settings of the master switch function."""
    return wiring.master_switch_service(settings_of(MasterSwitchSettings))


@router.get(
    "/locations/<location_id>/inventory-master/readiness",
    summary="Dry run of the switch to platform master",
    responses={**answers(ReadinessOut), **errors_for(404)},
    tags=["inventory master"],
)
def get_readiness(location_id: LocationId) -> ReadinessOut:
    return ReadinessOut.of(master_switch_service().readiness(location_id))


@router.put(
    "/locations/<location_id>/inventory-master",
    summary="Switch a store to platform master, once and for ever",
    description=(
        "`platform`: 200 when switched or already platform (with the original master_switched_at); "
        "409 location_is_dc, not_ready (details: the readiness reasons). `erp`: 200 on a location "
        "still under the ERP, 409 switch_irreversible once platform."
    ),
    responses={**answers(LocationOut), **errors_for(409, 404)},
    tags=["inventory master"],
)
def put_inventory_master(location_id: LocationId, body: Annotated[SwitchBody, Body()]) -> LocationOut:
    location = master_switch_service().switch(location_id, body.inventory_master, caller_identity(router))
    return LocationOut.of(location)
