"""What the export queue carries: an export to fan out (from the API or the schedule), and one
location's unit of work (from the fan-out, or sent again later while another export holds the
location)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from inventory.messages.parsing import invalid, json_object
from inventory.types import ClientId, LocationId


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExportFanOut(_Message):
    """Send one unit of work per location of the export."""

    kind: Literal["fan_out"] = "fan_out"
    export_id: ClientId


class LocationUnit(_Message):
    """Export one location's file for the export."""

    kind: Literal["location"] = "location"
    export_id: ClientId
    location_id: LocationId


ExportWork = ExportFanOut | LocationUnit


def parse_export_work(body: str) -> ExportWork:
    """The export queue's message, or InvalidInput naming what is wrong with it."""
    raw = json_object(body)
    model: type[ExportWork] = LocationUnit if raw.get("kind") == "location" else ExportFanOut
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise invalid(error, "message", "the export queue's message is not valid") from error
