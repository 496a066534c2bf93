"""Every list's cursor: the page's position, encoded one way; each list takes back only its own."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import pytest

from inventory.adapters.dynamodb.keys import location_key
from inventory.api.stock import ProductStockExplained, decode_ledger_cursor
from inventory.cursor import decode_cursor, encode_cursor
from inventory.errors import InvalidInput
from inventory.models import ImportKind
from tests.unit.test_allocations import Shop
from tests.unit.test_import_service import World


def stocked(products: int) -> World:
    world = World()
    world.import_inline("base", ImportKind.INITIAL, {f"p{n:02d}": n for n in range(products)})
    return world


def refused(call: Callable[[], object]) -> list[str]:
    with pytest.raises(InvalidInput) as refusal:
        call()
    return [detail["code"] for detail in refusal.value.details]


@pytest.mark.parametrize("position", [location_key("a"), [3, "p07"], ["2026-11-27T09:00:00.000Z", "e:0"]])
def test_a_position_reads_back_from_its_cursor_which_is_url_safe_text(position: object) -> None:
    cursor = encode_cursor(position)

    assert decode_cursor(cursor) == position
    assert set(cursor) <= set(string.ascii_letters + string.digits + "-_")


@pytest.mark.parametrize("cursor", ["not base64!", "e30", "W10", "bnVsbA", encode_cursor(location_key("s1"))])
def test_the_stock_list_refuses_a_cursor_it_did_not_return(cursor: str) -> None:
    """Given a location with stock, when its list is asked with junk, an empty object, an empty list,
    null or another list's cursor, then it answers invalid_cursor; its own cursor goes on."""
    world = stocked(5)

    first = world.stock.page("s1", 2, None)
    assert first.next_cursor is not None
    rest = world.stock.page("s1", 10, first.next_cursor)
    assert sorted(s.product_id for s in first.items + rest.items) == ["p00", "p01", "p02", "p03", "p04"]
    assert refused(lambda: world.stock.page("s1", 2, cursor)) == ["invalid_cursor"]


def test_a_product_s_ledger_refuses_the_cursor_of_the_stock_list() -> None:
    """Given a product with two ledger entries, when its explanation is asked with the stock list's
    cursor, then it answers invalid_cursor; its own cursor goes on from where the page ended."""
    shop = Shop(stock={"p1": 5, "p2": 5})
    shop.ship("e1", {"product_id": "p1", "quantity": 1})
    shop.ship("e2", {"product_id": "p1", "quantity": 2})
    listed = shop.stock.page("s1", 1, None).next_cursor
    assert listed is not None

    def explained(cursor: str | None) -> Any:
        after = decode_ledger_cursor(cursor) if cursor is not None else None
        return ProductStockExplained.of(shop.stock.explain("s1", "p1", 1, after)).ledger

    first = explained(None)
    assert first.next_cursor is not None
    second = explained(first.next_cursor)

    assert [(e.entry_id, e.quantity) for e in first.items + second.items] == [("e1:0", -1), ("e2:0", -2)]
    assert second.next_cursor is None
    assert refused(lambda: explained(listed)) == ["invalid_cursor"]
