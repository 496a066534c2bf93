"""The composition root: services built from settings and the AWS adapters, once per container."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from inventory.adapters.dynamodb import DynamoDbRepository
from inventory.adapters.eventbridge import EventBridgePublisher
from inventory.adapters.s3 import S3FileStore
from inventory.adapters.sqs import SqsWorkQueue
from inventory.messages import DetailType
from inventory.services.allocations import AllocationService
from inventory.services.fulfillment import FulfillmentService
from inventory.services.import_work import ImportWorker
from inventory.services.imports import ImportService
from inventory.services.locations import LocationService
from inventory.services.outbox import OutboxRelay
from inventory.services.shipments import ShipmentFigures, ShipmentService
from inventory.services.stock import StockService
from inventory.settings import get_settings


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@lru_cache(maxsize=1)
def repository() -> DynamoDbRepository:
    return DynamoDbRepository(get_settings().table_name)


@lru_cache(maxsize=1)
def location_service() -> LocationService:
    return LocationService(repository(), SystemClock(), get_settings().import_readiness_window_minutes)


@lru_cache(maxsize=1)
def outbox_relay() -> OutboxRelay:
    publisher = EventBridgePublisher(get_settings().event_bus_name)
    return OutboxRelay(
        repository(),
        publisher,
        SystemClock(),
        finishers={DetailType.SHIPMENT_APPLIED: ShipmentFigures(stock_service())},
    )


@lru_cache(maxsize=1)
def import_service() -> ImportService:
    settings = get_settings()
    return ImportService(
        repository(), S3FileStore(settings.import_bucket_name), SqsWorkQueue(settings.import_queue_url), SystemClock()
    )


@lru_cache(maxsize=1)
def import_worker() -> ImportWorker:
    return ImportWorker(import_service())


@lru_cache(maxsize=1)
def stock_service() -> StockService:
    return StockService(repository())


@lru_cache(maxsize=1)
def dead_letters() -> SqsWorkQueue:
    """Where records that can never succeed go, with their reason."""
    return SqsWorkQueue(get_settings().dead_letter_queue_url)


@lru_cache(maxsize=1)
def shipment_service() -> ShipmentService:
    return ShipmentService(repository(), SystemClock(), get_settings().ledger_retention_days)


@lru_cache(maxsize=1)
def fulfillment_service() -> FulfillmentService:
    return FulfillmentService(shipment_service(), allocation_service())


@lru_cache(maxsize=1)
def fulfillment_dead_letters() -> SqsWorkQueue:
    return SqsWorkQueue(get_settings().fulfillment_dead_letter_queue_url)


@lru_cache(maxsize=1)
def allocation_service() -> AllocationService:
    return AllocationService(repository(), SystemClock())
