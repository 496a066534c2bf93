"""The stock imports function's settings."""

from __future__ import annotations

from pydantic import Field

from inventory.settings import TableSettings


class StockImportsSettings(TableSettings):
    import_bucket_name: str = Field(min_length=3)
    import_queue_url: str = Field(min_length=1)
