"""Every refusal the service can answer, each with a stable `code`.

The HTTP layer maps the classes to statuses (inventory.api.http); batch handlers map them to
"retry" (TemporarilyUnavailable) or "dead-letter" (everything else). Never branch on messages.
"""

from __future__ import annotations

from typing import Any, ClassVar


class InventoryError(Exception):
    """Base of every error the domain raises on purpose."""

    code: ClassVar[str] = "inventory_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, Any]] = details or []


# ---- the input can never succeed (422)
class InvalidInput(InventoryError):
    code = "validation_error"


class EventTooOld(InvalidInput):
    """An event older than the ledger's retention: whether it was applied can no longer be told."""

    code = "event_too_old"


class UnknownLocation(InvalidInput):
    """An event for a location this service does not have: it applies once the location exists
    (redrive it then), unlike an event that breaks the contract."""

    code = "unknown_location"


# ---- the resource does not exist (404)
class NotFound(InventoryError):
    code = "not_found"


# ---- the body is too large (413)
class PayloadTooLarge(InventoryError):
    code = "payload_too_large"


# ---- a rule refused the request (409)
class Conflict(InventoryError):
    code = "conflict"


class LocationTypeImmutable(Conflict):
    code = "location_type_immutable"


class LocationIsDc(Conflict):
    code = "location_is_dc"


class NotReady(Conflict):
    code = "not_ready"


class SwitchIrreversible(Conflict):
    code = "switch_irreversible"


class ImportInProgress(Conflict):
    code = "import_in_progress"


class ImportIdReused(Conflict):
    code = "import_id_reused"


class ImportKindNotAllowed(Conflict):
    code = "import_kind_not_allowed"


class WatermarkRegressed(Conflict):
    """An import names a `shipments_included_through` below that of the location's last completed import."""

    code = "watermark_regressed"


class OpenMispickCounts(Conflict):
    code = "open_mispick_counts"


class CountIdReused(Conflict):
    code = "count_id_reused"


class CountNotOpen(Conflict):
    code = "count_not_open"


class CountResultsDiffer(Conflict):
    code = "count_results_differ"


class AllocationIdReused(Conflict):
    code = "allocation_id_reused"


class TransactionIdReused(Conflict):
    code = "transaction_id_reused"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class EventIdReused(Conflict):
    code = "event_id_reused"


class MainAlwaysSalable(Conflict):
    """`main` is salable, always (SPEC.md section 2)."""

    code = "main_always_salable"


class StockLocationInUse(Conflict):
    """`salable` of a stock location type cannot change once a quantity other than 0 was put in it."""

    code = "stock_location_in_use"


class TooManyStockLocations(Conflict):
    code = "too_many_stock_locations"


class ExportIdReused(Conflict):
    code = "export_id_reused"


class TooManyExportLocations(Conflict):
    """An export covers at most MAX_EXPORT_LOCATIONS locations (docs/data-design.md, "Availability exports")."""

    code = "too_many_locations"


class NoLocationsToExport(Conflict):
    code = "no_locations"


class ItemTooLarge(Conflict):
    """The write would take a stored item past DynamoDB's 400 KB (a product's ledger at one
    location: docs/data-design.md)."""

    code = "item_too_large"


# ---- a dependency failed in a way that a retry may fix (503, or the record is retried)
class TemporarilyUnavailable(InventoryError):
    code = "temporarily_unavailable"
