"""Every item module's class composed into one repository: every storage port on one table."""

from __future__ import annotations

from inventory.adapters.dynamodb.allocation_lines import AllocationLines
from inventory.adapters.dynamodb.allocations import Allocations
from inventory.adapters.dynamodb.counters import Counters
from inventory.adapters.dynamodb.cycle_counts import CycleCounts
from inventory.adapters.dynamodb.events import AppliedEventRecords
from inventory.adapters.dynamodb.exports import AvailabilityExports
from inventory.adapters.dynamodb.imports import Imports
from inventory.adapters.dynamodb.ledger_pages import LedgerPages
from inventory.adapters.dynamodb.locations import Locations
from inventory.adapters.dynamodb.outbox import Outbox
from inventory.adapters.dynamodb.stock_locations import StockLocationTypes
from inventory.adapters.dynamodb.transactions import Transactions

__all__ = ["DynamoDbRepository"]


class DynamoDbRepository(
    Locations,
    Imports,
    Counters,
    LedgerPages,
    AllocationLines,
    AppliedEventRecords,
    Allocations,
    CycleCounts,
    Transactions,
    Outbox,
    StockLocationTypes,
    AvailabilityExports,
):
    """Every port of storage, on one table: LocationRepository, ImportRepository, CountersRepository,
    AllocationLineRepository, AppliedEvents, AllocationRepository, CycleCountRepository,
    OutboxStore, StockLocationRepository, TransactionRepository and ExportRepository (inventory.ports), and so their
    compositions: ImportRepositories, StockReadRepositories, LineRepositories,
    AllocationRepositories, ShipmentRepositories and TransactionRepositories.
    `DynamoDbRepository(table_name)`, or on a client or a Table of its own."""
