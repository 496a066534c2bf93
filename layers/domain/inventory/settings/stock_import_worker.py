"""The stock import worker's settings."""

from __future__ import annotations

from pydantic import Field

from inventory.settings.stock_imports import StockImportsSettings


class StockImportWorkerSettings(StockImportsSettings):
    dead_letter_queue_url: str = Field(min_length=1)
    import_max_receives: int = Field(ge=1)  # the import queue's maxReceiveCount
    # How long after its claim an import naming shipments_included_through settles its products'
    # sums, at the earliest: the fulfilment function's timeout and a margin (README, Stock imports).
    import_settle_seconds: int = Field(ge=0, le=900)
