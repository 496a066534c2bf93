"""What availability exports need from the outside world, as protocols (the rest of the service's
ports are in `inventory.ports`)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from inventory.models import OutboxEvent, Page
from inventory.models.counters import ProductCounters
from inventory.models.exports import AvailabilityExport, ExportState, LocationExport, LocationFile
from inventory.models.imports import StockRow
from inventory.ports import LocationRepository, StockLocationRepository


class ExportRepository(Protocol):
    def put_export(self, export: AvailabilityExport) -> bool: ...  # a new record; False: the id exists

    def get_export(self, export_id: str) -> tuple[AvailabilityExport, dict[str, LocationExport]] | None:
        """The export and its location exports (by location), read consistently."""
        ...

    def list_exports(self, limit: int, cursor: str | None) -> Page[AvailabilityExport]: ...  # newest first

    def mark_export_running(self, export_id: str) -> None: ...  # once its units are sent

    def finish_export(self, export: AvailabilityExport, event: OutboxEvent) -> bool:
        """Completed or failed, with its event, once (False: finished already)."""
        ...

    def put_location_export(self, export_id: str, unit: LocationExport, at: datetime) -> bool:
        """Record a location's part unless it is completed already."""
        ...

    def claim_export_state(
        self, location_id: str, export_id: str, now: datetime, lease_until: datetime
    ) -> ExportState | None:
        """The location's lease for `export_id` (free, its own, or expired), and its state; None: held."""
        ...

    def commit_export_state(self, file: LocationFile) -> bool:
        """`file` is the location's last, and the lease is given back, while the export holds it."""
        ...

    def release_export_state(self, location_id: str, export_id: str) -> None: ...

    def changed_products(self, location_id: str, shard: int) -> Iterator[str]:
        """The products of a shard whose figures changed since the location's last export."""
        ...

    def clear_change(self, location_id: str, product_id: str, version: int) -> bool:
        """Unmark a product, if its counters' `version` is still `version`."""
        ...


class ExportReads(Protocol):
    """What a unit reads of a location's products."""

    product_shards: int

    def counters_of_shard(self, location_id: str, shard: int) -> Iterator[tuple[str, ProductCounters]]:
        """A shard's counters in key order, consistently, without their buffers' entries; each with
        its product's key form (`product_order`)."""
        ...

    def scan_import_rows(self, location_id: str, seq: int, shard: int) -> Iterator[tuple[str, StockRow]]:
        """A layer's rows of one shard in key order, consistently, each with its product's key form."""
        ...

    def product_states(
        self, location_id: str, wanted: Mapping[str, Sequence[int]], stock_locations: Collection[str]
    ) -> dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]]: ...


class ExportRepositories(ExportRepository, LocationRepository, StockLocationRepository, ExportReads, Protocol):
    pass


class ExportFiles(Protocol):
    """Where export files go (the export bucket)."""

    def uri(self, key: str) -> str: ...

    def upload_new(self, key: str, path: Path, metadata: Mapping[str, str]) -> bool:
        """Store the file at `path` under `key`, unless an object is there already (False then):
        the first complete upload of a key is the one that stays."""
        ...

    def metadata(self, key: str) -> dict[str, str]:
        """The user metadata of the object at `key`."""
        ...

    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key` (replacing what is there); its s3:// uri."""
        ...
