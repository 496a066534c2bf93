"""The table's keys: the key table of docs/data-design.md, in code, and the only place a key string
(pk, sk, an index's partition or sort value) or an attribute-name prefix is built or parsed.

    location        pk LOC#<location_id>   sk LOCATION           gsi1pk LOCATIONS  gsi1sk <location_id>
    import record   pk LOC#<location_id>   sk IMPORT#<import_id>
    cycle count     pk LOC#<location_id>   sk COUNT#<count_id>
    allocation      pk LOC#<location_id>   sk ALLOC#<allocation_id>
                    pending from the API:                gsi1pk ABANDON#<nn>  gsi1sk <abandon_at>#<location_id>
    transaction     pk LOC#<location_id>   sk TXN#<transaction_id>
                    pending:                             gsi1pk TXPENDING#<nn>  gsi1sk <abandon_at>#<location_id>
    cycle count, submitting:                             gsi1pk CNTPENDING#<nn> gsi1sk <abandon_at>#<location_id>
    applied event   pk EVT#<location_id>#S<nn>                sk EVENT#<event_id>
    import row      pk IMP#<location_id>#<import seq>#S<nn>   sk P#<product>#<stock location>
    counters        pk LOC#<location_id>#S<nn>                sk P#<product>
    ledger page     pk LED#<location_id>#S<nn>#<pp>           sk P#<product>#<page seq, 10 digits>
    allocation line pk ALN#<location_id>#S<nn>                sk P#<product>#<received, 17 digits>#<allocation id>
    any item with unpublished events:                    outbox_pk OUTBOX#<n> (and its own sk)
    stock location types (one item for the retailer): pk CONFIG   sk STOCK_LOCATIONS
    export record   pk EXPORT#<export_id>  sk EXPORT              gsi1pk EXPORTS  gsi1sk <requested_at>#<export_id>
    location export pk EXPORT#<export_id>  sk LOC#<location_id>
    export state    pk LOC#<location_id>   sk EXPORTS
    a product whose figures changed since its location's last export:  chg_pk CHG#<location_id>#S<nn> (its own sk)

`<product>` is the percent-encoded product id (`product_order`), which never holds a '#'; an id whose
encoding would not fit a sort key (1,024 bytes) is `!` and the id with only '#', '%' and the
characters below them encoded. Attributes
whose names carry an id: `E#<event id>` (an outbox event), `B#<entry id>#<16 hex of its source
hash>` (an entry in a product's buffer), `L#<entry id>#<source hash>` (an entry as a product's
counters held them before the buffer), `A#<allocation id>` (what an open allocation holds of a
product), `after#<import seq>` (a product's sum of the lines that import does not include),
`tx#<stock location>#<import seq>` (a product's sum of the inventory transactions of a stock
location while that import was announced), `cnt#<stock location>` (a cycle count reported it),
`seg#<segment>` and `ep#<epoch>` (the first ledger page holding an entry of a logical-timestamp
segment, of an epoch), `c#<entry id>` (on an allocation line: what that shipment line closed of
it), `sl#<name>` and `use#<name>` (on the stock location types' item: a type's `salable`, and when
it was first marked in use).
Each is one top-level attribute, never a document path.
"""

from __future__ import annotations

import hashlib
import zlib
from datetime import datetime

from inventory.models import SOURCE_HASH_CHARS, iso, product_of_order, product_order

PRODUCT_SHARDS = 32  # each location's counters, and each import's rows, over this many partitions
EVENT_SHARDS = 32  # each location's applied-event records, by the crc32 of the event id
OUTBOX_SHARDS = 8  # partitions of the outbox index, by the crc32 of the item's pk
PENDING_SHARDS = 8  # pending allocations are listed by `abandon_at`, over this many gsi1 partitions
PAGE_SHARDS = 8  # a product's ledger pages, over this many partitions of its shard (a best seller's are not one key)

LOCATIONS_PARTITION = "LOCATIONS"  # gsi1: every location, by id
LOCATION_SK = "LOCATION"
PRODUCT_PREFIX = "P#"  # the sort key of a product's counters and of its import rows
EVENT_PREFIX = "E#"  # an outbox event, by event id
LEDGER_PREFIX = "L#"  # a ledger entry of a product's counters, by entry id and source hash: L#<id>#<hash>
BUFFER_PREFIX = "B#"  # an entry of a product's buffer, by entry id and 16 hex of its source: B#<id>#<hash>
ALLOCATION_PREFIX = "A#"  # what an open allocation holds of a product, by allocation id
SUM_PREFIX = "after#"  # a product's sum of the lines an import layer does not include: after#<seq>
# a product's sum of the inventory transactions of a stock location while a layer was announced:
# tx#<stock location>#<seq> (stock location names hold no '#')
MOVED_PREFIX = "tx#"
COUNTED_PREFIX = "cnt#"  # a stock location a cycle count reported under platform master: cnt#<stock location>
SEGMENT_PREFIX = "seg#"  # the first ledger page holding an entry of a segment: seg#<segment>
EPOCH_PREFIX = "ep#"  # the first ledger page holding an entry of an epoch: ep#<epoch>
CLOSE_PREFIX = "c#"  # on an allocation line: what a shipment line's entry closed of it, c#<entry id>
CONFIG_PARTITION = "CONFIG"  # the retailer's configuration: one item per setting
STOCK_LOCATIONS_SK = "STOCK_LOCATIONS"
STOCK_LOCATION_PREFIX = "sl#"  # on the stock location types' item: a type's `salable`, sl#<name>
IN_USE_PREFIX = "use#"  # and when it was first marked in use, use#<name>
SORT_KEY_BYTES = 1024  # DynamoDB's limit of a sort key

Key = dict[str, str]


# ---------------------------------------------------------------- items of a location's partition
def location_pk(location_id: str) -> str:
    return f"LOC#{location_id}"


def location_key(location_id: str) -> Key:
    return {"pk": location_pk(location_id), "sk": LOCATION_SK}


def import_key(location_id: str, import_id: str) -> Key:
    return {"pk": location_pk(location_id), "sk": f"IMPORT#{import_id}"}


COUNT_PREFIX = "COUNT#"


def count_key(location_id: str, count_id: str) -> Key:
    return {"pk": location_pk(location_id), "sk": f"{COUNT_PREFIX}{count_id}"}


def allocation_key(location_id: str, allocation_id: str) -> Key:
    return {"pk": location_pk(location_id), "sk": f"ALLOC#{allocation_id}"}


TRANSACTION_PREFIX = "TXN#"


def transaction_key(location_id: str, transaction_id: str) -> Key:
    return {"pk": location_pk(location_id), "sk": f"{TRANSACTION_PREFIX}{transaction_id}"}


# ---------------------------------------------------------------- products: counters and import rows
def product_shard(product_id: str) -> int:
    return _shard_of(product_order(product_id))


def _shard_of(order: str) -> int:
    return zlib.crc32(order.encode()) % PRODUCT_SHARDS


def product_sk(product_id: str) -> str:
    return f"{PRODUCT_PREFIX}{product_order(product_id)}"


def past_product(product_id: str) -> str:
    """A sort key above every sort key of `product_id` (its counters, its rows) and below the next product's."""
    return f"{product_sk(product_id)}#\uffff"


def product_of(sk: str) -> str:
    """The product id of a counters item's sort key."""
    return product_of_order(sk.removeprefix(PRODUCT_PREFIX))


def counters_partition(location_id: str, shard: int) -> str:
    return f"{location_pk(location_id)}#S{shard:02d}"


def counters_key(location_id: str, product_id: str) -> Key:
    return {"pk": counters_partition(location_id, product_shard(product_id)), "sk": product_sk(product_id)}


def ledger_pages_prefix(location_id: str) -> str:
    """What the partition key of every ledger page of the location starts with."""
    return f"LED#{location_id}#"


def page_shard(product_id: str, page: int) -> int:
    """Which of PAGE_SHARDS partitions of its product's shard a ledger page is in."""
    return zlib.crc32(f"{product_order(product_id)}#{page}".encode()) % PAGE_SHARDS


def ledger_page_key(location_id: str, product_id: str, page: int) -> Key:
    """A product's ledger page: in its product's shard, over PAGE_SHARDS partitions by page."""
    order = product_order(product_id)
    return {
        "pk": f"{ledger_pages_prefix(location_id)}S{_shard_of(order):02d}#{page_shard(product_id, page)}",
        "sk": f"{PRODUCT_PREFIX}{order}#{page:010d}",
    }


def allocation_lines_partition(location_id: str, shard: int) -> str:
    return f"ALN#{location_id}#S{shard:02d}"


def allocation_lines_prefix(product_id: str) -> str:
    """What the sort key of every allocation line of the product starts with (and no other product's)."""
    return f"{product_sk(product_id)}#"


def allocation_line_key(location_id: str, product_id: str, received: int, allocation_id: str) -> Key:
    """An open allocation's line of one product: in the product's shard, sorted by the order the
    service received the allocation in. An allocation id that would take the key past 1,024 bytes
    (a product id of the longest form) is written `~` and 13 hex digits of its SHA-256."""
    order = product_order(product_id)
    sk = f"{PRODUCT_PREFIX}{order}#{received:017d}#{allocation_id}"
    if len(sk.encode()) > SORT_KEY_BYTES:
        sk = f"{PRODUCT_PREFIX}{order}#{received:017d}#~{hashlib.sha256(allocation_id.encode()).hexdigest()[:13]}"
    return {"pk": allocation_lines_partition(location_id, _shard_of(order)), "sk": sk}


def import_partition(location_id: str, seq: int, shard: int) -> str:
    return f"IMP#{location_id}#{seq}#S{shard:02d}"


def import_row_key(location_id: str, seq: int, product_id: str, stock_location: str) -> Key:
    order = product_order(product_id)
    return {
        "pk": import_partition(location_id, seq, _shard_of(order)),
        "sk": f"{PRODUCT_PREFIX}{order}#{stock_location}",
    }


def import_row_of(sk: str) -> tuple[str, str]:
    """(product id, stock location) of an import row's sort key."""
    _, order, stock_location = sk.split("#")
    return product_of_order(order), stock_location


def import_row_order_of(sk: str) -> tuple[str, str]:
    """(the product's key form, stock location) of an import row's sort key: what a scan merges by."""
    _, order, stock_location = sk.split("#")
    return order, stock_location


def order_of(sk: str) -> str:
    """The product's key form (`product_order`) of a counters item's sort key."""
    return sk.removeprefix(PRODUCT_PREFIX)


def import_seq_of(pk: str) -> int:
    """The import sequence number of an import row's partition key."""
    return int(pk.split("#")[2])


# ---------------------------------------------------------------- the retailer's configuration
def stock_locations_key() -> Key:
    return {"pk": CONFIG_PARTITION, "sk": STOCK_LOCATIONS_SK}


def stock_location_attribute(name: str) -> str:
    return STOCK_LOCATION_PREFIX + name


def in_use_attribute(name: str) -> str:
    return IN_USE_PREFIX + name


def named_by(name: str, prefix: str) -> str:
    """The stock location type an attribute of the types' item names after `prefix`."""
    return name.removeprefix(prefix)


# ---------------------------------------------------------------- applied events
def event_shard(event_id: str) -> int:
    return zlib.crc32(event_id.encode()) % EVENT_SHARDS


def event_key(location_id: str, event_id: str) -> Key:
    return {"pk": f"EVT#{location_id}#S{event_shard(event_id):02d}", "sk": f"EVENT#{event_id}"}


# ---------------------------------------------------------------- the outbox index
def outbox_shard(pk: str) -> int:
    return zlib.crc32(pk.encode()) % OUTBOX_SHARDS


def outbox_partition(shard: int) -> str:
    return f"OUTBOX#{shard}"


def outbox_pk_of(pk: str) -> str:
    """The outbox index partition of an item: the same for every write of it."""
    return outbox_partition(outbox_shard(pk))


# ---------------------------------------------------------------- pending allocations, in gsi1
def pending_shard(location_id: str, allocation_id: str) -> int:
    return zlib.crc32(f"{location_id}/{allocation_id}".encode()) % PENDING_SHARDS


PENDING_ALLOCATIONS = "ABANDON#"
PENDING_TRANSACTIONS = "TXPENDING#"
PENDING_COUNTS = "CNTPENDING#"


def pending_partition(shard: int, listing: str = PENDING_ALLOCATIONS) -> str:
    return f"{listing}{shard}"


def pending_index_keys(
    location_id: str, record_id: str, abandon_at: datetime, listing: str = PENDING_ALLOCATIONS
) -> Key:
    """The gsi1 keys that list a pending allocation (or transaction) by when it would be abandoned."""
    return {
        "gsi1pk": pending_partition(pending_shard(location_id, record_id), listing),
        "gsi1sk": f"{iso(abandon_at)}#{location_id}",
    }


def abandoned_before(now: datetime) -> str:
    """A gsi1 sort key above those of the pending allocations abandoned before `now`."""
    return iso(now)


# ---------------------------------------------------------------- attributes named by an id
def event_attribute(event_id: str) -> str:
    return EVENT_PREFIX + event_id


def event_id_of(name: str) -> str:
    """The event id of an outbox event's attribute."""
    return name.removeprefix(EVENT_PREFIX)


def entry_attribute_prefix(entry_id: str) -> str:
    """What the attribute of every entry of `entry_id` starts with, whatever the hash of its source."""
    return f"{LEDGER_PREFIX}{entry_id}#"


def entry_attribute(entry_id: str, source_hash: str | None) -> str:
    """An entry's attribute: its id and the hash of what caused it (the last '#' separates them)."""
    return entry_attribute_prefix(entry_id) + (source_hash or "")


def entry_of(name: str) -> tuple[str, str | None]:
    """(entry id, source hash or None) of an entry's attribute."""
    entry_id, _, source_hash = name.removeprefix(LEDGER_PREFIX).rpartition("#")
    return entry_id, source_hash or None


def buffer_attribute_prefix(entry_id: str) -> str:
    """What the buffer attribute of every entry of `entry_id` starts with, whatever its source."""
    return f"{BUFFER_PREFIX}{entry_id}#"


def buffer_attribute(entry_id: str, source_hash: str | None) -> str:
    """An entry's attribute in a product's buffer: its id and the first 16 hex digits of its source."""
    return buffer_attribute_prefix(entry_id) + (source_hash or "")[:SOURCE_HASH_CHARS]


def buffer_entry_of(name: str) -> tuple[str, str | None]:
    """(entry id, source hash or None) of a buffer entry's attribute."""
    entry_id, _, source_hash = name.removeprefix(BUFFER_PREFIX).rpartition("#")
    return entry_id, source_hash or None


def sum_attribute(seq: int) -> str:
    return f"{SUM_PREFIX}{seq}"


def moved_attribute(stock_location: str, seq: int) -> str:
    return f"{MOVED_PREFIX}{stock_location}#{seq}"


def counted_attribute(stock_location: str) -> str:
    return f"{COUNTED_PREFIX}{stock_location}"


def moved_of(name: str) -> tuple[str, int]:
    """The stock location and layer of a `moved_attribute`."""
    stock_location, _, seq = name.removeprefix(MOVED_PREFIX).rpartition("#")
    return stock_location, int(seq)


def segment_attribute(segment: int) -> str:
    return f"{SEGMENT_PREFIX}{segment}"


def epoch_attribute(epoch: int) -> str:
    return f"{EPOCH_PREFIX}{epoch}"


def number_of(name: str, prefix: str) -> int:
    """The number an attribute's name carries after `prefix` (a sum's, a segment's, an epoch's)."""
    return int(name.removeprefix(prefix))


def allocation_attribute(allocation_id: str) -> str:
    return ALLOCATION_PREFIX + allocation_id


def allocation_id_of(name: str) -> str:
    """The allocation id of an open allocation's attribute."""
    return name.removeprefix(ALLOCATION_PREFIX)


def close_attribute(entry_id: str) -> str:
    """On an allocation line: what the shipment line of this entry closed of it."""
    return CLOSE_PREFIX + entry_id


def close_entry_of(name: str) -> str:
    return name.removeprefix(CLOSE_PREFIX)


# ---------------------------------------------------------------- availability exports
EXPORTS_PARTITION = "EXPORTS"  # gsi1: every export, by when it was requested
EXPORT_SK = "EXPORT"
EXPORT_STATE_SK = "EXPORTS"
LOCATION_PREFIX = "LOC#"
CHANGE_MARK = "chg_pk"  # on a hot item: the partition of the `changes` index it is in while marked


def export_pk(export_id: str) -> str:
    return f"EXPORT#{export_id}"


def export_key(export_id: str) -> Key:
    return {"pk": export_pk(export_id), "sk": EXPORT_SK}


def export_index_keys(export_id: str, requested_at: datetime) -> Key:
    return {"gsi1pk": EXPORTS_PARTITION, "gsi1sk": f"{iso(requested_at)}#{export_id}"}


def location_export_key(export_id: str, location_id: str) -> Key:
    return {"pk": export_pk(export_id), "sk": f"{LOCATION_PREFIX}{location_id}"}


def exported_location_of(sk: str) -> str:
    return sk.removeprefix(LOCATION_PREFIX)


def export_state_key(location_id: str) -> Key:
    return {"pk": location_pk(location_id), "sk": EXPORT_STATE_SK}


def changes_partition(location_id: str, shard: int) -> str:
    """The `changes` index partition of a location's shard: its products changed since its last export."""
    return f"CHG#{location_id}#S{shard:02d}"


def change_mark_of(location_id: str, product_id: str) -> str:
    return changes_partition(location_id, product_shard(product_id))
