"""Messages in and out of the service, as models: parsed before anything acts on them.

The names of the bus events are defined here, once; the models are in the modules beside it.
"""

from enum import StrEnum

SOURCE = "inventory-master"  # the `source` of every event this service publishes


class DetailType(StrEnum):
    """The `detail-type` of each bus event the service takes or publishes (SPEC.md section 5)."""

    # in: shipment events and allocation events, through the fulfilment queue
    ITEMS_SHIPPED = "Fulfillment Items Shipped"
    ITEMS_HANDED_OVER = "Fulfillment Items Handed Over"
    ALLOCATION_CREATED = "Allocation Created"
    ALLOCATION_RELEASED = "Allocation Released"
    # out: published by the outbox relay
    STOCK_IMPORTED = "Stock Imported"
    MASTER_SWITCHED = "Inventory Master Switched"
    SHIPMENT_APPLIED = "Shipment Applied"
    ALLOCATION_REFUSED = "Allocation Refused"
    TRANSACTION_COMPLETED = "Inventory Transaction Completed"
    COUNT_COMPLETED = "Cycle Count Completed"
    AVAILABILITY_EXPORTED = "Availability Exported"
