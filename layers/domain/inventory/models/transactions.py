"""Inventory transactions (SPEC.md section 4): what moves stock in a store besides shipments, and
the record that makes a transaction of up to MAX_TRANSACTION_ITEMS items all or nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum

from inventory.models import Frozen, InventoryMaster, LedgerKind
from inventory.types import MAIN


class TransactionType(StrEnum):
    RECEIVING = "receiving"  # into main, with a reference such as a PO or an ASN
    TRANSFER_OUT = "transfer_out"  # to another location (`destination_location_id`)
    TRANSFER_IN = "transfer_in"  # from another location (`source_location_id`, when known)
    ADJUSTMENT = "adjustment"  # between two stock locations of the store, or in from or out to untracked stock
    RETURN = "return"  # a customer's return, into main or the stock location given

    @property
    def kind(self) -> LedgerKind:
        return LedgerKind(self.value)


class TransactionStatus(StrEnum):
    PENDING = "pending"  # being applied, item by item; a repeat of the request (or the sweep) completes it
    COMPLETED = "completed"


class TransactionItem(Frozen):
    product_id: str
    quantity: int  # > 0: the direction comes from the type and the stock locations
    from_stock_location: str | None = None
    to_stock_location: str | None = None

    def movement(self, transaction_type: TransactionType) -> tuple[str, int, str | None]:
        """(stock location, signed quantity there, the other end of a move or None)."""
        into, out_of = self.to_stock_location, self.from_stock_location
        if transaction_type is TransactionType.TRANSFER_OUT:
            return out_of or MAIN, -self.quantity, None
        if transaction_type is not TransactionType.ADJUSTMENT:  # receiving, transfer_in, return
            return into or MAIN, self.quantity, None
        if out_of is not None:  # an adjustment out of a stock location: to another one, or to untracked stock
            return out_of, -self.quantity, into
        return into or MAIN, self.quantity, None  # in from untracked stock


class ItemFigures(Frozen):
    """A product's figures right after the transaction's item was applied (what the answer and the
    event carry, so that an ERP can mirror them)."""

    product_id: str
    stock_on_hand: int
    stock_locations: dict[str, int]  # per stock location the item moved: its new quantity
    available: int
    version: int


class TransactionRequest(Frozen):
    transaction_id: str
    type: TransactionType
    reason: str | None = None
    reference: str | None = None
    destination_location_id: str | None = None
    source_location_id: str | None = None
    items: tuple[TransactionItem, ...]

    def body_hash(self) -> str:
        body = self.model_dump(mode="json", include=set(TransactionRequest.model_fields) - {"transaction_id"})
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class InventoryTransaction(TransactionRequest):
    """The record of a transaction (`TXN#<transaction id>` beside its location)."""

    location_id: str
    status: TransactionStatus
    content_hash: str  # the request's `body_hash`
    master: InventoryMaster  # the master it applies under, decided before its first item
    caller: str
    created_at: datetime
    completed_at: datetime | None = None
    abandon_at: datetime | None = None  # completed (or undone) by the sweep if still pending then
    results: tuple[ItemFigures, ...] = ()  # per item, once completed

    def entry_id(self, index: int) -> str:
        """The ledger entry id of item `index` (a shipment line's is `<event id>:<line>`)."""
        return transaction_entry_id(self.transaction_id, index)


TRANSACTION_ENTRY_PREFIX = "tx:"


def transaction_entry_id(transaction_id: str, index: int) -> str:
    return f"{TRANSACTION_ENTRY_PREFIX}{transaction_id}:{index}"


def transaction_of_entry(entry_id: str) -> str:
    """The transaction id of an inventory transaction's entry id."""
    return entry_id.removeprefix(TRANSACTION_ENTRY_PREFIX).rpartition(":")[0]
