"""The DynamoDB adapter: one module per item it owns, on shared parts.

    keys          every key string and attribute-name prefix, built and parsed (the key table)
    codec         Python values to attribute values and back
    expressions   update and condition expressions, every name through ExpressionAttributeNames
    table         the table client: requests, batches and their retries, pages, error translation
    locations, imports, counters, ledger_pages, allocations, events, cycle_counts, outbox: the items,
                  one module each

docs/data-design.md has every key, access pattern and its cost. No multi-item transaction is used
anywhere: each guarded change is one single-item conditional write, which also records in the same
item the event it causes (see `outbox`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inventory.adapters.dynamodb.allocations import Allocations
from inventory.adapters.dynamodb.counters import Counters
from inventory.adapters.dynamodb.cycle_counts import CycleCounts
from inventory.adapters.dynamodb.events import AppliedEventRecords
from inventory.adapters.dynamodb.imports import Imports
from inventory.adapters.dynamodb.ledger_pages import LedgerPages
from inventory.adapters.dynamodb.locations import Locations
from inventory.adapters.dynamodb.outbox import Outbox
from inventory.adapters.dynamodb.table import Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["DynamoDbRepository"]


class DynamoDbRepository(
    Locations, Imports, Counters, LedgerPages, AppliedEventRecords, Allocations, CycleCounts, Outbox
):
    """Every port of storage, on one table: LocationRepository, ImportRepository, CountersRepository,
    AppliedEvents, AllocationRepository, CycleCountRepository and OutboxStore (inventory.ports), and
    so the services' compositions of them: ImportRepositories, StockReadRepositories,
    AllocationRepositories and ShipmentRepositories."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = Table(table_name, client)

    @property
    def client(self) -> DynamoDBClient:
        """The table's boto3 client (created on first use)."""
        return self._table.client
