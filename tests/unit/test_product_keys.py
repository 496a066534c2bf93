"""A product's key form (`product_order`): every valid product id fits a DynamoDB sort key, reads
back, keeps the key of any id that could be stored before, and never falls in another's range."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from inventory.adapters.dynamodb.keys import import_row_key, import_row_of, past_product, product_of, product_sk
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
