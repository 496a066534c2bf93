"""A product's key form (`product_order`): every valid product id fits a DynamoDB sort key, reads
back, keeps the key of any id that could be stored before, and never falls in another's range; and
the key table of docs/data-design.md is the one keys.py builds."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from inventory.adapters.dynamodb.keys import (
    allocation_key,
    allocation_line_key,
    count_key,
    counters_key,
    event_key,
    event_shard,
    export_key,
    export_state_key,
    import_key,
    import_row_key,
    import_row_of,
    ledger_page_key,
    location_export_key,
    location_key,
    page_shard,
    past_product,
    product_of,
    product_shard,
    product_sk,
    stock_locations_key,
    transaction_key,
)
from inventory.models import PRODUCT_KEY_BYTES, product_of_order, product_order

SORT_KEY_BYTES = 1024  # DynamoDB's limit for a sort key
LONGEST_STOCK_LOCATION = "s" * 32

product_ids = st.text(
    alphabet=st.one_of(
        st.sampled_from(" !\"#$%&'/\\~😀中é\uffff"),
        st.characters(exclude_categories=("Cc", "Cs")),
    ),
    min_size=1,
    max_size=128,
)
# At least 83 code points of 4 bytes in UTF-8 (12 percent-encoded): too long for the percent form;
# then, maybe, characters that sort below '#' or are encoded in the long form.
long_ids = st.builds(
    str.__add__,
    st.text(alphabet=st.sampled_from("😀\U0001d518\U0010fffd\U0001f4a9"), min_size=83, max_size=100),
    st.text(alphabet=st.sampled_from(' !"#$%a中'), max_size=28),
)


@given(st.one_of(product_ids, long_ids))
def test_every_product_id_fits_a_sort_key_and_reads_back(product_id: str) -> None:
    order = product_order(product_id)
    row = import_row_key("store-1", 1, product_id, LONGEST_STOCK_LOCATION)

    assert len(order.encode()) <= PRODUCT_KEY_BYTES
    assert len(row["sk"].encode()) <= SORT_KEY_BYTES
    assert len(past_product(product_id).encode()) <= SORT_KEY_BYTES
    assert "#" not in order
    assert product_of_order(order) == product_id
    assert product_of(product_sk(product_id)) == product_id
    assert import_row_of(row["sk"]) == (product_id, LONGEST_STOCK_LOCATION)


@given(st.one_of(product_ids, long_ids))
def test_an_id_whose_percent_encoding_fits_keeps_the_key_it_always_had(product_id: str) -> None:
    encoded = quote(product_id, safe="")

    assert (product_order(product_id) == encoded) is (len(encoded) <= PRODUCT_KEY_BYTES)


@given(st.one_of(product_ids, long_ids), st.one_of(product_ids, long_ids))
def test_no_product_falls_in_the_key_range_of_another(first: str, second: str) -> None:
    """Reads of a product's items query `P#<form>` up to `past_product`, in UTF-8 byte order."""
    if first == second:
        return
    low, high = product_sk(first).encode(), past_product(first).encode()

    assert not low <= product_sk(second).encode() <= high
    assert product_order(first) != product_order(second)


# ---------------------------------------------------------------- the key table of docs/data-design.md
DESIGN = Path(__file__).resolve().parents[2] / "docs" / "data-design.md"
STORE, SEQ, PRODUCT = "store-1", 7, "SKU 1/a"  # the product's percent-encoded form is SKU%201%2Fa
RECEIVED = 1_795_000_000_000_000  # an allocation line's received order (microseconds)
BUILT = {  # each item of the table, as keys.py builds it for the values above
    "location": location_key(STORE),
    "import record": import_key(STORE, "i1"),
    "cycle count": count_key(STORE, "c1"),
    "import row (a base)": import_row_key(STORE, SEQ, PRODUCT, "main"),
    "product hot item (the ledger's sums, the buffer of recent entries, open allocations, versions)": counters_key(
        STORE, PRODUCT
    ),
    "ledger page (entries moved out of the buffer)": ledger_page_key(STORE, PRODUCT, 1),
    "allocation record": allocation_key(STORE, "a1"),
    "inventory transaction": transaction_key(STORE, "t1"),
    "open allocation line": allocation_line_key(STORE, PRODUCT, RECEIVED, "a1"),
    "applied event (its body hash; `done` once every line is applied)": event_key(STORE, "ev-1"),
    "stock location types (the retailer's: one item)": stock_locations_key(),
    "export record": export_key("x1"),
    "location export (a unit's result)": location_export_key("x1", STORE),
    "a location's export state (its lease, its last export)": export_state_key(STORE),
}


def code_of(cell: str) -> str:
    """A cell's first `code` span: the key, without the words after it."""
    found = re.search(r"`([^`]*)`", cell)
    assert found, cell
    return found.group(1)


def documented_keys() -> dict[str, tuple[str, str]]:
    """(pk, sk) of every built item of the design's key table, its placeholders filled in: the
    values above, the product percent-encoded as the design says, and each item's shard."""
    text = DESIGN.read_text()
    table = text[text.index("| item | pk | sk |") : text.index("Indexes:")]
    values = {
        "<location>": STORE,
        "<import seq>": str(SEQ),
        "<product>": quote(PRODUCT, safe=""),
        "<stock location>": "main",
        "<import_id>": "i1",
        "<count_id>": "c1",
        "<allocation_id>": "a1",
        "<transaction_id>": "t1",
        "<allocation id>": "a1",
        "<received order, 17 digits>": f"{RECEIVED:017d}",
        "<event_id>": "ev-1",
        "<export_id>": "x1",
        "<pp>": str(page_shard(PRODUCT, 1)),
        "<page, 10 digits>": f"{1:010d}",
    }
    shards = {"applied event (its body hash; `done` once every line is applied)": event_shard("ev-1")}
    rows = {}
    for line in [row for row in table.splitlines() if row.startswith("|")][2:]:
        item, pk_cell, sk_cell, _, status = (cell.strip() for cell in line.strip("|").split("|"))
        if status.startswith("built"):
            pk, sk = (code_of(cell) for cell in (pk_cell, sk_cell))
            for name, value in {**values, "<nn>": f"{shards.get(item, product_shard(PRODUCT)):02d}"}.items():
                pk, sk = pk.replace(name, value), sk.replace(name, value)
            rows[item] = (pk, sk)
    return rows


def test_every_key_of_the_design_s_key_table_is_the_one_keys_py_builds() -> None:
    """Given the key table of docs/data-design.md, when each built item's key is made by keys.py,
    then it is the documented one, character for character (the product percent-encoded)."""
    documented = documented_keys()

    assert documented.keys() == BUILT.keys()
    for item, key in BUILT.items():
        assert (key["pk"], key["sk"]) == documented[item], item


def test_an_allocation_line_s_key_fits_a_sort_key_whatever_its_product_and_allocation() -> None:
    """Given the longest product id of the longest key form and the longest allocation id, when its
    allocation line's key is made, then it fits DynamoDB's 1,024 bytes and stays in the product's
    range, and two allocations received at once keep two keys."""
    product = "\u4e00" * 128
    first = allocation_line_key(STORE, product, RECEIVED, "a" * 128)
    second = allocation_line_key(STORE, product, RECEIVED, "b" * 128)

    assert len(first["sk"].encode()) <= 1024
    assert first["sk"] != second["sk"]
    assert first["sk"].startswith(counters_key(STORE, product)["sk"] + "#")
