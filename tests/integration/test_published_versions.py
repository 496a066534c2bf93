"""A product's published `version` through the real handlers on the local backends: it grows with every
change of the product's figures, also with those that write no product item (an import's rows, a
full import's 0 for a product it omits, a location setting, the switch), and stays where it is for a
product that an import does not touch (docs/data-design.md, "Published versions")."""

from __future__ import annotations

import uuid
from itertools import pairwise
from typing import Any

import pytest

from local.stack import LocalAws
from tests.conftest import FakeContext, load_handler, sqs_event
from tests.integration.test_allocations import availability, call, load
from tests.integration.test_failure_paths import import_steps

pytestmark = pytest.mark.integration


def imported(local_aws: LocalAws, location: str, import_id: str, kind: str, stock: dict[str, int]) -> dict[str, Any]:
    """An import accepted by the API and run by the worker's handler from its queue messages, to its end."""
    body = {"import_id": import_id, "kind": kind, "items": [{"product_id": p, "quantity": q} for p, q in stock.items()]}
    status, record = call("stock_imports", "POST", f"/locations/{location}/stock-imports", body)
    assert status == 202, record
    worker = load_handler("stock_import_worker")
    while record["status"] not in ("completed", "failed"):
        steps = import_steps(local_aws, location)
        assert steps, f"no step of {import_id} on the queue"
        answer = worker.lambda_handler(sqs_event(steps, local_aws.arn("ImportQueue")), FakeContext(remaining_ms=60_000))
        assert answer == {"batchItemFailures": []}
        record = call("stock_imports", "GET", f"/locations/{location}/stock-imports/{import_id}")[1]
    assert record["status"] == "completed", record
    return record


def test_a_products_version_grows_with_imports_settings_and_the_switch_and_only_with_those_that_touch_it(
    local_aws: LocalAws,
) -> None:
    """Given a store loaded with a, b and c, and an allocation of a (so that a keeps its row when no
    import holds it), when a partial import changes a, a full import omits a, the default safety
    stock changes, and the store switches to platform master, then a's version strictly increases at
    each step, each time with a figure of its row changed; and b's stays across the partial import
    that does not name it."""
    location = f"ver-{uuid.uuid4().hex[:8]}"
    load(location, {"a": 5, "b": 3, "c": 2})
    allocation = {"allocation_id": "al-1", "order_id": "o-1", "items": [{"product_id": "a", "quantity": 1}]}
    assert call("allocations", "POST", f"/locations/{location}/allocations", allocation)[0] == 201
    rows = [availability(location, "a")]
    b_before = availability(location, "b")

    imported(local_aws, location, "partial-1", "partial", {"a": 7})
    rows.append(availability(location, "a"))
    b_after_partial = availability(location, "b")
    full = imported(local_aws, location, "full-1", "full_count", {"b": 3, "c": 2})
    rows.append(availability(location, "a"))
    status, _ = call("locations", "PUT", f"/locations/{location}", {"type": "store", "default_safety_stock": 1})
    assert status == 200
    rows.append(availability(location, "a"))
    switch = call("master_switch", "PUT", f"/locations/{location}/inventory-master", {"inventory_master": "platform"})
    assert switch[0] == 200, switch
    rows.append(availability(location, "a"))

    assert [(r["stock_on_hand"], r["allocated"], r["safety_stock"], r["available"]) for r in rows] == [
        (5, 1, 0, 4),  # loaded, one allocated
        (7, 1, 0, 6),  # the partial import's row
        (0, 1, 0, 0),  # omitted by the full import: 0
        (0, 1, 1, 0),  # the location's default safety stock
        (0, 1, 1, 0),  # switched (a's base is 0: nothing uncounted, and the figures as before)
    ]
    assert full["counts"]["zeroed"] == 1
    found = [r["version"] for r in rows]
    assert all(earlier < later for earlier, later in pairwise(found)), found
    assert b_after_partial == b_before  # the partial import did not touch b: same figures, same version
    assert availability(location, "b")["version"] > b_before["version"]  # the full import and the settings did


def test_the_switch_that_makes_stock_uncounted_raises_every_products_version(local_aws: LocalAws) -> None:
    """Given a store whose initial import holds stock, when it switches to platform master (its stock
    now uncounted, nothing available), then every product's version is above its version before."""
    location = f"ver-{uuid.uuid4().hex[:8]}"
    load(location, {"a": 5, "b": 3})
    before = [availability(location, p) for p in ("a", "b")]

    switch = call("master_switch", "PUT", f"/locations/{location}/inventory-master", {"inventory_master": "platform"})
    after = [availability(location, p) for p in ("a", "b")]

    assert switch[0] == 200, switch
    assert [(r["uncounted"], r["available"]) for r in before] == [(False, 5), (False, 3)]
    assert [(r["uncounted"], r["available"]) for r in after] == [(True, 0), (True, 0)]
    assert all(a["version"] > b["version"] for a, b in zip(after, before, strict=True))
