"""The rules of the service's values, each defined once: the annotated types that the HTTP bodies,
the bus messages and the import files' reader share, and the limits and names they are built from.

The import files' reader checks a million rows without a model: it takes the same limits from here,
and `is_product_id`, the product id rule as a plain function.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Protocol, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

# ---------------------------------------------------------------- ids and names
LOCATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Ids that clients choose for imports, counts, allocations and transactions.
CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
MAX_ID_LENGTH = 128  # code points of a product id, and of the ids other systems choose
# Text that names or identifies something holds no control character (Unicode Cc: C0, DEL, C1).
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
NO_CONTROL_CHARACTERS = rf"^[^{CONTROL_CHARACTERS}]*$"
# s3://<bucket>/<key>: a bucket named as S3 names them (3 to 63 lower-case letters, digits, '.' and '-').
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+"

LocationId = Annotated[StrictStr, Field(pattern=LOCATION_ID_PATTERN)]
ClientId = Annotated[StrictStr, Field(pattern=CLIENT_ID_PATTERN)]
# Ids that other systems choose and this service only keeps: events, shipments, orders.
ExternalId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS)]
ProductId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS)]
LocationName = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)]
S3Uri = Annotated[StrictStr, Field(pattern=S3_URI_PATTERN)]

# Control characters, and lone surrogates (a JSON "\ud800" escape), which UTF-8 cannot store: the
# models refuse those as text that is not Unicode.
_NOT_IN_A_PRODUCT_ID = re.compile(rf"[{CONTROL_CHARACTERS}\ud800-\udfff]")


def is_product_id(value: str) -> bool:
    """`ProductId`'s rule, as a function."""
    return 0 < len(value) <= MAX_ID_LENGTH and (value.isprintable() or _NOT_IN_A_PRODUCT_ID.search(value) is None)


def matches(pattern: str, value: str) -> bool:
    """Whether `value` is an id of `pattern`'s (one of the above), for ids that do not come in a
    model: the parts of an object's key, a cursor's."""
    return re.fullmatch(pattern, value) is not None


# ---------------------------------------------------------------- stock locations
# Stock location types are configured for every location at once (PUT /stock-locations/{name}):
# these are the types, and whether they count toward stock on hand, until anything else is stored
# (SPEC.md section 2). The stored configuration decides; only `main` is fixed.
DEFAULT_STOCK_LOCATIONS: dict[str, bool] = {"main": True, "damaged": False, "display": False, "returns": False}
MAIN = "main"  # salable always; shipments and handovers take from it
STOCK_LOCATION_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
MAX_STOCK_LOCATIONS = 16  # types configured, the defaults included: each is one key of every product read

# A name of the form of a stock location; whether it is one of the configured types is the
# services' to check, against the stored configuration.
StockLocation = Annotated[StrictStr, Field(pattern=STOCK_LOCATION_PATTERN)]

# ---------------------------------------------------------------- quantities and limits
MAX_QUANTITY = 1_000_000_000
Quantity = Annotated[StrictInt, Field(ge=0, le=MAX_QUANTITY)]
PositiveQuantity = Annotated[StrictInt, Field(gt=0, le=MAX_QUANTITY)]
# A shipment's logical timestamp, and the highest one an import includes: what a signed 64-bit
# integer holds, as the ERP's and fulfilment's numbers do (DynamoDB would refuse past 38 digits).
# Written as below 2^63, which the OpenAPI document's float renders exactly (2^63 - 1 it cannot).
LogicalTimestamp = Annotated[StrictInt, Field(ge=0, lt=2**63)]
MAX_ALLOCATION_ITEMS = 100  # products per allocation: each is one conditional write
MAX_TRANSACTION_ITEMS = 100  # items of an inventory transaction: each is one conditional write
MAX_COUNT_PRODUCTS = 5_000  # products of a cycle count, and items of its results
# What a count's product ids may take, UTF-8: the count's record holds them with its results (one
# item, 400 KB at most), so that no write of the count can fail for its size half-way.
MAX_COUNT_ID_BYTES = 200_000
MAX_SHIPMENT_LINES = 1_000  # lines of one shipment event
MAX_INLINE_ITEMS = 5_000  # rows of an import given in the request's body
MAX_SAFETY_STOCK_ITEMS = 1_000  # products of one safety stock request: each is one conditional write


# ---------------------------------------------------------------- text that stands for a value
def _decimal(value: object) -> object:
    """ASCII digits as the number they write; anything else as it is, for the type to refuse."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


def _flag(value: object) -> object:
    """`true` or `false`, in any case, as the flag; anything else as it is, for the type to refuse."""
    flags = {"true": True, "false": False}
    return flags.get(value.lower(), value) if isinstance(value, str) else value


# What an S3 object's metadata says, which is text: a logical timestamp in decimal, a flag.
LogicalTimestampText = Annotated[LogicalTimestamp, BeforeValidator(_decimal)]
FlagText = Annotated[StrictBool, BeforeValidator(_flag)]


# ---------------------------------------------------------------- each product once
class _ProductLine(Protocol):
    @property
    def product_id(self) -> str: ...


L = TypeVar("L", bound=_ProductLine)


def repeated_product(items: Sequence[_ProductLine]) -> str | None:
    """The first product that a list of lines names twice, or None: an allocation names each once."""
    return repeated_id(item.product_id for item in items)


def repeated_id(ids: Iterable[str]) -> str | None:
    """The first id a list names twice, or None (a cycle count lists each product once)."""
    seen: set[str] = set()
    for found in ids:
        if found in seen:
            return found
        seen.add(found)
    return None


def _each_id_once(ids: list[str]) -> list[str]:
    if (repeated := repeated_id(ids)) is not None:
        raise PydanticCustomError(
            "duplicate_product", "product {product_id} is listed twice", {"product_id": repr(repeated)}
        )
    return ids


EachIdOnce = AfterValidator(_each_id_once)


def _each_product_once(items: Sequence[L]) -> Sequence[L]:
    if (product_id := repeated_product(items)) is not None:
        raise PydanticCustomError(
            "duplicate_product", "product {product_id} is listed twice", {"product_id": repr(product_id)}
        )
    return items


EachProductOnce = AfterValidator(_each_product_once)
