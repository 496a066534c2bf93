"""The composition root: each service built from the settings of the function it runs in and the
AWS adapters, once per container (per settings: one process may host several functions in tests).

Each builder imports what it builds when it is first called, so that a function loads the
services and adapters it asks for and no other (every function imports this module: an import at
the top would load every service into every function's cold start).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from inventory import settings

if TYPE_CHECKING:
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.outbox import Outbox
    from inventory.adapters.dynamodb.repository import DynamoDbRepository
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes
    from inventory.adapters.dynamodb.table import Table
    from inventory.adapters.sqs import SqsWorkQueue
    from inventory.export_ports import ExportRepositories
    from inventory.ports import (
        AllocationRepositories,
        ImportRepositories,
        ImportRunRepositories,
        ShipmentRepositories,
        StockReadRepositories,
        StoreOperationRepositories,
    )
    from inventory.services.abandoned import AbandonedRequests
    from inventory.services.allocations import AllocationService
    from inventory.services.availability_exports import ExportService
    from inventory.services.cycle_counts import CycleCountService
    from inventory.services.export_units import ExportUnits, ExportWorker
    from inventory.services.import_runs import ImportRunner
    from inventory.services.imports import ImportService
    from inventory.services.locations import LocationService, MasterSwitchService
    from inventory.services.outbox import OutboxRelay
    from inventory.services.safety_stock import SafetyStockService
    from inventory.services.shipment_events import ShipmentEventService, ShipmentService
    from inventory.services.stock import StockService
    from inventory.services.stock_import_worker import StockImportWorker
    from inventory.services.stock_locations import StockLocationService
    from inventory.services.transactions import TransactionService
    from inventory.settings import TableSettings
    from inventory.settings.availability_exports import AvailabilityExportsSettings, AvailabilityExportWorkerSettings
    from inventory.settings.master_switch import MasterSwitchSettings
    from inventory.settings.outbox_relay import OutboxRelaySettings
    from inventory.settings.shipment_events import ShipmentEventsSettings
    from inventory.settings.stock_import_worker import StockImportWorkerSettings
    from inventory.settings.stock_imports import StockImportsSettings


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@cache
def table(table_name: str) -> Table:
    """The table, and its client, that every repository of this process shares."""
    from inventory.adapters.dynamodb.table import Table

    return Table(table_name)


@cache
def repository(table_name: str) -> DynamoDbRepository:
    """Every storage port on the shared table (tests and tools; each service gets only its ports)."""
    from inventory.adapters.dynamodb.repository import DynamoDbRepository

    return DynamoDbRepository(table(table_name))


# What each service needs of storage, composed of the adapter's item classes on the shared table: a
# function loads the item modules (and the models they store) of its own services, no other.
@cache
def locations(table_name: str) -> Locations:
    from inventory.adapters.dynamodb.locations import Locations

    return Locations(table(table_name))


@cache
def import_store(table_name: str) -> ImportRepositories:
    from inventory.adapters.dynamodb.imports import Imports
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes

    class ImportStore(Imports, Locations, StockLocationTypes):
        """Imports, the locations they claim and make visible, and the stock location types they name."""

    return ImportStore(table(table_name))


@cache
def import_run_store(table_name: str) -> ImportRunRepositories:
    from inventory.adapters.dynamodb.counters import Counters
    from inventory.adapters.dynamodb.imports import Imports
    from inventory.adapters.dynamodb.ledger_pages import LedgerPages
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes

    class ImportRunStore(Counters, LedgerPages, Imports, Locations, StockLocationTypes):
        """Imports, their locations, the products' counters whose sums an import settles, and the
        stock location types its rows name (and mark in use)."""

    return ImportRunStore(table(table_name))


@cache
def stock_store(table_name: str) -> StockReadRepositories:
    from inventory.adapters.dynamodb.counters import Counters
    from inventory.adapters.dynamodb.imports import Imports
    from inventory.adapters.dynamodb.ledger_pages import LedgerPages
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes

    class StockStore(Counters, LedgerPages, Imports, Locations, StockLocationTypes):
        """What stock is read from: the location, its visible imports' rows, its products' counters,
        and the stock location types (which rows there are, which are salable)."""

    return StockStore(table(table_name))


@cache
def allocation_store(table_name: str) -> AllocationRepositories:
    from inventory.adapters.dynamodb.allocation_lines import AllocationLines
    from inventory.adapters.dynamodb.allocations import Allocations
    from inventory.adapters.dynamodb.counters import Counters
    from inventory.adapters.dynamodb.imports import Imports
    from inventory.adapters.dynamodb.ledger_pages import LedgerPages
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes

    class AllocationStore(Allocations, AllocationLines, Counters, LedgerPages, Imports, Locations, StockLocationTypes):
        """Allocations, their open parts (held in the products' counters or lines of their own), and
        the stock they are checked against."""

    return AllocationStore(table(table_name))


@cache
def shipment_store(table_name: str) -> ShipmentRepositories:
    from inventory.adapters.dynamodb.allocation_lines import AllocationLines
    from inventory.adapters.dynamodb.allocations import Allocations
    from inventory.adapters.dynamodb.counters import Counters
    from inventory.adapters.dynamodb.cycle_counts import CycleCounts
    from inventory.adapters.dynamodb.events import AppliedEventRecords
    from inventory.adapters.dynamodb.imports import Imports
    from inventory.adapters.dynamodb.ledger_pages import LedgerPages
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes
    from inventory.adapters.dynamodb.transactions import Transactions

    class ShipmentStore(
        AppliedEventRecords,
        Transactions,
        CycleCounts,
        Allocations,
        AllocationLines,
        Counters,
        LedgerPages,
        Imports,
        Locations,
        StockLocationTypes,
    ):
        """The applied events' records, and what a shipment changes and is checked against."""

    return ShipmentStore(table(table_name))


@cache
def stock_location_types(table_name: str) -> StockLocationTypes:
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes

    return StockLocationTypes(table(table_name))


@cache
def outbox(table_name: str) -> Outbox:
    from inventory.adapters.dynamodb.outbox import Outbox

    return Outbox(table(table_name))


@cache
def location_service(settings: TableSettings) -> LocationService:
    from inventory.services.locations import LocationService

    return LocationService(locations(settings.table_name), SystemClock())


@cache
def stock_location_service(settings: TableSettings) -> StockLocationService:
    from inventory.services.stock_locations import StockLocationService

    return StockLocationService(stock_location_types(settings.table_name))


@cache
def master_switch_service(settings: MasterSwitchSettings) -> MasterSwitchService:
    from inventory.services.locations import MasterSwitchService

    return MasterSwitchService(locations(settings.table_name), SystemClock(), settings.import_readiness_window_minutes)


@cache
def stock_service(settings: TableSettings) -> StockService:
    from inventory.services.stock import StockService

    return StockService(stock_store(settings.table_name))


@cache
def safety_stock_service(settings: TableSettings) -> SafetyStockService:
    """Products' own safety stock: written to their hot items, answered with their availability."""
    from inventory.services.safety_stock import SafetyStockService
    from inventory.services.stock import StockService

    store = stock_store(settings.table_name)
    return SafetyStockService(store, StockService(store))


@cache
def allocation_service(settings: TableSettings) -> AllocationService:
    from inventory.services.allocations import AllocationService
    from inventory.services.stock import StockService

    store = allocation_store(settings.table_name)
    return AllocationService(store, StockService(store), SystemClock())


@cache
def abandoned_requests(settings: TableSettings) -> AbandonedRequests:
    """The sweep: it only needs the table (it neither reads import files nor sends import steps)."""
    from inventory.services.abandoned import AbandonedRequests, ImportSweep

    return AbandonedRequests(
        allocation_service(settings),
        ImportSweep(import_store(settings.table_name), SystemClock()),
        transaction_service(settings),
        cycle_count_service(settings),
    )


@cache
def store_operations_store(table_name: str) -> StoreOperationRepositories:
    from inventory.adapters.dynamodb.counters import Counters
    from inventory.adapters.dynamodb.cycle_counts import CycleCounts
    from inventory.adapters.dynamodb.events import AppliedEventRecords
    from inventory.adapters.dynamodb.imports import Imports
    from inventory.adapters.dynamodb.ledger_pages import LedgerPages
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes
    from inventory.adapters.dynamodb.transactions import Transactions

    class TransactionStore(
        Transactions, CycleCounts, AppliedEventRecords, Counters, LedgerPages, Imports, Locations, StockLocationTypes
    ):
        """Transaction records, the products' figures they move, and the records the move of entries reads."""

    return TransactionStore(table(table_name))


@cache
def transaction_service(settings: TableSettings) -> TransactionService:
    from inventory.services.stock import StockService
    from inventory.services.transactions import TransactionService

    store = store_operations_store(settings.table_name)
    return TransactionService(store, StockService(store), SystemClock())


@cache
def cycle_count_service(settings: TableSettings) -> CycleCountService:
    from inventory.services.cycle_counts import CycleCountService
    from inventory.services.stock import StockService

    store = store_operations_store(settings.table_name)  # the same items: records, products, and what moves read
    return CycleCountService(store, StockService(store), SystemClock())


@cache
def import_service(settings: StockImportsSettings) -> ImportService:
    from inventory.adapters.s3 import S3FileStore
    from inventory.adapters.sqs import SqsWorkQueue
    from inventory.services.imports import ImportService

    return ImportService(
        import_store(settings.table_name),
        S3FileStore(settings.import_bucket_name),
        SqsWorkQueue(settings.import_queue_url),
        SystemClock(),
    )


@cache
def import_runner(settings: StockImportWorkerSettings) -> ImportRunner:
    from inventory.adapters.s3 import S3FileStore
    from inventory.adapters.sqs import SqsWorkQueue
    from inventory.services.import_runs import ImportRunner

    return ImportRunner(
        import_run_store(settings.table_name),
        S3FileStore(settings.import_bucket_name),
        SqsWorkQueue(settings.import_queue_url),
        SystemClock(),
        settle_delay=timedelta(seconds=settings.import_settle_seconds),
    )


@cache
def stock_import_worker(settings: StockImportWorkerSettings) -> StockImportWorker:
    from inventory.services.stock_import_worker import StockImportWorker

    return StockImportWorker(import_runner(settings))


@cache
def stock_import_dead_letters(settings: StockImportWorkerSettings) -> SqsWorkQueue:
    """Where import queue records that can never succeed go, with their reason."""
    from inventory.adapters.sqs import SqsWorkQueue

    return SqsWorkQueue(settings.dead_letter_queue_url)


@cache
def shipment_service(settings: ShipmentEventsSettings) -> ShipmentService:
    from inventory.services.shipment_events import ShipmentService
    from inventory.services.stock import StockService

    store = shipment_store(settings.table_name)
    return ShipmentService(store, StockService(store), SystemClock())


@cache
def shipment_event_service(settings: ShipmentEventsSettings) -> ShipmentEventService:
    from inventory.services.shipment_events import ShipmentEventService

    return ShipmentEventService(shipment_service(settings), allocation_service(settings))


@cache
def shipment_events_dead_letters(settings: ShipmentEventsSettings) -> SqsWorkQueue:
    """Where fulfilment queue records that can never succeed go, with their reason."""
    from inventory.adapters.sqs import SqsWorkQueue

    return SqsWorkQueue(settings.fulfillment_dead_letter_queue_url)


@cache
def outbox_relay(settings: OutboxRelaySettings) -> OutboxRelay:
    from inventory.adapters.eventbridge import EventBridgePublisher
    from inventory.messages import DetailType
    from inventory.services.outbox import Finisher, OutboxRelay
    from inventory.services.shipment_figures import ShipmentFigures

    publisher = EventBridgePublisher(settings.event_bus_name)
    finishers: dict[str, Finisher] = {DetailType.SHIPMENT_APPLIED: ShipmentFigures(stock_service(settings))}
    return OutboxRelay(outbox(settings.table_name), publisher, SystemClock(), finishers=finishers)


@cache
def export_store(table_name: str) -> ExportRepositories:
    from inventory.adapters.dynamodb.counters import Counters
    from inventory.adapters.dynamodb.exports import AvailabilityExports
    from inventory.adapters.dynamodb.imports import Imports
    from inventory.adapters.dynamodb.locations import Locations
    from inventory.adapters.dynamodb.stock_locations import StockLocationTypes

    class ExportStore(AvailabilityExports, Counters, Imports, Locations, StockLocationTypes):
        """Exports, their locations' state, and what a location's rows are read from."""

    return ExportStore(table(table_name))


@cache
def export_service(settings: AvailabilityExportsSettings) -> ExportService:
    from inventory.adapters.sqs import SqsWorkQueue
    from inventory.services.availability_exports import ExportService

    store = export_store(settings.table_name)
    return ExportService(store, store, SqsWorkQueue(settings.export_queue_url), SystemClock())


@cache
def export_units(settings: AvailabilityExportsSettings) -> ExportUnits:
    from inventory.adapters.s3 import S3ExportFiles
    from inventory.adapters.sqs import SqsWorkQueue
    from inventory.services.export_units import ExportUnits

    files = S3ExportFiles(settings.export_bucket_name)
    return ExportUnits(export_store(settings.table_name), files, SqsWorkQueue(settings.export_queue_url), SystemClock())


@cache
def export_worker(settings: AvailabilityExportWorkerSettings) -> ExportWorker:
    from inventory.adapters.sqs import SqsWorkQueue
    from inventory.services.export_units import ExportWorker

    return ExportWorker(export_units(settings), SqsWorkQueue(settings.export_queue_url))


@cache
def export_dead_letters(settings: AvailabilityExportWorkerSettings) -> SqsWorkQueue:
    """Where export queue records that can never succeed go, with their reason."""
    from inventory.adapters.sqs import SqsWorkQueue

    return SqsWorkQueue(settings.export_dead_letter_queue_url)


def forget() -> None:
    """Read the settings and build everything again at the next call (tests change the environment)."""
    settings.read.cache_clear()
    for built in (
        table,
        repository,
        locations,
        import_store,
        import_run_store,
        stock_store,
        allocation_store,
        shipment_store,
        stock_location_types,
        outbox,
        location_service,
        stock_location_service,
        master_switch_service,
        stock_service,
        safety_stock_service,
        allocation_service,
        abandoned_requests,
        import_service,
        import_runner,
        stock_import_worker,
        stock_import_dead_letters,
        shipment_service,
        shipment_event_service,
        shipment_events_dead_letters,
        outbox_relay,
        export_store,
        export_service,
        export_units,
        export_worker,
        export_dead_letters,
    ):
        built.cache_clear()
