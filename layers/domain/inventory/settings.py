"""Deployment settings, read once per cold start from the function's environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What `template.yaml` passes to every function. The domain never reads `os.environ`."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(min_length=3)
    event_bus_name: str = "default"
    import_readiness_window_minutes: int = Field(default=15, ge=1, le=1440)
    relay_poll_interval_ms: int = Field(default=1000, ge=10, le=60_000)
    import_bucket_name: str = ""
    import_queue_url: str = ""
    dead_letter_queue_url: str = ""
    fulfillment_dead_letter_queue_url: str = ""
    import_max_receives: int = Field(default=5, ge=1)  # the import queue's maxReceiveCount
    fulfillment_max_receives: int = Field(default=5, ge=1)  # the fulfilment queue's maxReceiveCount
    # How long the id of an applied event line is kept: the queues' retention (14 days) plus a
    # redrive window. Older events are dead-lettered, never applied a second time.
    ledger_retention_days: int = Field(default=35, ge=15, le=365)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
