"""The availability exports function's settings, and its worker's."""

from __future__ import annotations

from pydantic import Field

from inventory.settings import TableSettings


class AvailabilityExportsSettings(TableSettings):
    export_bucket_name: str = Field(min_length=3)
    export_queue_url: str = Field(min_length=1)


class AvailabilityExportWorkerSettings(AvailabilityExportsSettings):
    export_dead_letter_queue_url: str = Field(min_length=1)
    export_max_receives: int = Field(ge=1)  # the export queue's maxReceiveCount
