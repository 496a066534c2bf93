"""The master switch function's settings."""

from __future__ import annotations

from pydantic import Field

from inventory.settings import TableSettings


class MasterSwitchSettings(TableSettings):
    import_readiness_window_minutes: int = Field(ge=1, le=1440)
