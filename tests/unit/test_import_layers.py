"""A bounded number of import layers (docs/data-design.md, "Imports: a bounded number of layers"):
a partial import that finds PARTIAL_LAYERS partial layers visible takes them into its own layer,
each merged row keeping its origin's rule; figures, bases and the lines' sums stay those of the
reference semantics however many partial imports follow a baseline, late lines and imports
running while lines arrive included."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.messages.import_work import LayerPurge
from inventory.models import PARTIAL_LAYERS, ImportKind, ImportStatus, VisibleImport
from inventory.models.imports import RowOrigin, StockRow
from inventory.services.import_runs import rows_to_merge
from inventory.services.imports import ImportRequest
from inventory.services.ledger_moves import kept_at_most
from inventory.services.shipment_events import ShipmentService
from inventory.services.stock import StockService
from tests.unit.reference import ErpStore
from tests.unit.test_import_service import World
from tests.unit.test_shipments import bus_message, parse_shipment

PRODUCTS = ("a", "b", "c", "d")
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def layer(seq: int, through: int | None = None) -> VisibleImport:
    return VisibleImport(
        seq=seq,
        import_id=f"i{seq}",
        kind=ImportKind.PARTIAL,
        shipments_included_through=through,
        accepted_at=T0 + timedelta(seconds=seq),
        completed_at=T0 + timedelta(seconds=seq),
    )


def row(product: str, quantity: int, stock_location: str = "main", origin: RowOrigin | None = None) -> StockRow:
    return StockRow(product_id=product, stock_location=stock_location, quantity=quantity, origin=origin)


def test_a_merge_keeps_the_newest_row_of_each_product_with_its_origin_and_leaves_own_rows_alone() -> None:
    older_origin = RowOrigin(seq=1, import_id="i1", accepted_at=T0, shipments_included_through=3, layer=2)
    layers = [
        (layer(2, through=7), [row("a", 1, origin=older_origin), row("b", 2), row("c", 3)]),
        (layer(5), [row("b", 21, "damaged"), row("b", 20)]),  # in key order, as read
    ]
    own = [row("c", 30)]

    merged = {(r.product_id, r.stock_location): r for r in rows_to_merge(own, layers)}

    assert set(merged) == {("a", "main"), ("b", "main"), ("b", "damaged")}  # c: its own row stays
    assert merged["a", "main"].origin == older_origin.model_copy(update={"layer": 2})  # merged before: kept
    assert (merged["b", "main"].quantity, merged["b", "main"].origin) == (
        20,
        RowOrigin(seq=5, import_id="i5", accepted_at=T0 + timedelta(seconds=5), layer=5),
    )


class Store:
    """The service (fakes, the real services) and the reference model, driven step by step."""

    def __init__(self) -> None:
        self.world = World(chunk_rows=2)
        self.shipments = ShipmentService(self.world.repo, StockService(self.world.repo), self.world.clock)
        self.reference = ErpStore()
        self.watermark: int | None = None
        self.running: str | None = None
        self.events = 0

    def accept(self, kind: ImportKind, rows: dict[str, int], through: int | None) -> None:
        import_id = f"imp{len(self.reference.accepted)}"
        items = [row(p, q) for p, q in rows.items()]
        self.world.imports.accept("s1", ImportRequest(import_id, kind, through, items=items), "tester")
        assert self.reference.accept_import(import_id, kind.value, rows, through) == "accepted"
        self.running = import_id

    def complete(self) -> None:
        if self.running is None:
            return
        self.world.run_queue(budget_ms=0)  # hands on after each chunk, shard and page: every checkpoint taken
        assert self.world.imports.status("s1", self.running).status is ImportStatus.COMPLETED
        record = self.world.imports.status("s1", self.running)
        self.reference.complete_import(self.running)
        if record.shipments_included_through is not None:
            self.watermark = record.shipments_included_through
        self.running = None

    def ship(self, product: str, quantity: int, timestamp: int) -> None:
        self.events += 1
        event_id = f"ev{self.events}"
        detail = {
            "event_id": event_id,
            "location_id": "s1",
            "shipment_id": f"sh{self.events}",
            "logical_timestamp": timestamp,
            "occurred_at": "2026-11-27T09:00:00Z",
            "items": [{"product_id": product, "quantity": quantity}],
        }
        self.shipments.apply(parse_shipment(bus_message(detail)))
        assert self.reference.ship(event_id, json.dumps(detail), timestamp, [(product, quantity, None)]) == "applied"

    def check(self) -> None:
        location = self.world.repo.get_location("s1")
        assert location is not None
        assert len(location.partial_layers()) <= PARTIAL_LAYERS
        ids = {imported.order: import_id for import_id, imported in self.reference.accepted.items()}
        for product in PRODUCTS:
            stock = self.world.stock.product("s1", product)
            assert stock.stock_on_hand == self.reference.stock_on_hand(product), product
            base = self.reference.base(product)
            main = next((f for f in stock.stock_locations if f.stock_location == "main"), None)
            shown = main.base.import_id if main is not None and main.base is not None else None
            assert shown == (ids[base.order] if base is not None else None), product


partial = st.tuples(
    st.just("import"),
    st.dictionaries(st.sampled_from(PRODUCTS), st.integers(0, 40), min_size=1, max_size=3),
    st.none() | st.integers(0, 6),  # how far its watermark moves past the last one (None: it names none)
    st.booleans(),  # True: it completes only after the next step (a line arrives while it runs)
)
full = st.tuples(
    st.just("full"), st.dictionaries(st.sampled_from(PRODUCTS), st.integers(0, 40), min_size=1, max_size=2)
)
line = st.tuples(st.just("ship"), st.sampled_from(PRODUCTS), st.integers(1, 3), st.integers(-8, 4))
# As many partial imports as lines, and a full count now and then: enough partial layers to merge.
step = st.sampled_from(["partial"] * 8 + ["line"] * 8 + ["full"]).flatmap(
    lambda kind: {"partial": partial, "line": line, "full": full}[kind]
)


@settings(max_examples=60, deadline=None)
@given(history=st.lists(step, min_size=30, max_size=70))
def test_figures_and_bases_stay_the_reference_s_however_many_partial_imports_follow(history: list[tuple]) -> None:
    store = Store()
    store.accept(ImportKind.INITIAL, dict.fromkeys(PRODUCTS, 50), 0)
    store.complete()
    for kind, *args in history:
        store.world.clock.advance(seconds=1)
        if kind == "ship":
            product, quantity, offset = args
            store.ship(product, quantity, max(0, (store.watermark or 0) + offset))  # late lines too
        elif store.running is None and kind == "full":
            store.accept(ImportKind.FULL_COUNT, args[0], store.watermark)
        elif store.running is None:
            rows, moved, slow = args
            store.accept(ImportKind.PARTIAL, rows, None if moved is None else (store.watermark or 0) + moved)
            if slow:
                continue
        store.complete()
        store.check()
    store.complete()
    store.check()


def test_forty_partial_imports_leave_at_most_nine_layers_and_a_constant_read() -> None:
    store = Store()
    store.accept(ImportKind.INITIAL, dict.fromkeys(PRODUCTS, 100), 0)
    store.complete()
    reads = []
    for n in range(40):
        store.world.clock.advance(seconds=1)
        product = PRODUCTS[n % len(PRODUCTS)]
        store.accept(ImportKind.PARTIAL, {product: 100 - n}, None if n % 3 == 0 else 10 * n)
        store.ship(PRODUCTS[(n + 1) % len(PRODUCTS)], 1, 10 * n + 5)
        store.ship(product, 1, max(0, 10 * n - 15))  # late: at or below a watermark a merged row may follow
        earlier = PRODUCTS[(n + 2) % len(PRODUCTS)]  # imported two imports ago, maybe merged since
        store.ship(earlier, 1, max(0, 10 * (n - 2)))  # included by its base when that named 10 * (n - 2)
        store.ship(earlier, 1, max(0, 10 * (n - 2) + 1))  # not included
        store.complete()
        store.ship(product, 1, 10 * n + 7)
        store.check()
        location = store.world.repo.get_location("s1")
        assert location is not None
        reads.append(len(location.visible_imports))
    assert max(reads) <= 1 + PARTIAL_LAYERS
    assert reads[-PARTIAL_LAYERS:] == reads[-2 * PARTIAL_LAYERS : -PARTIAL_LAYERS]  # a cycle: bounded, not growing


def rows_of(store: Store, seq: int) -> int:
    return len(store.world.repo.rows.get(("s1", seq), {}))


def test_the_layers_an_import_ends_are_purged_once_it_released_the_location_and_the_visible_ones_never() -> None:
    store = Store()
    store.accept(ImportKind.INITIAL, dict.fromkeys(PRODUCTS, 100), 0)
    store.complete()
    for n in range(PARTIAL_LAYERS):
        store.accept(ImportKind.PARTIAL, {PRODUCTS[n % 4]: n, PRODUCTS[(n + 1) % 4]: n}, n)
        store.complete()
    before = {p: store.world.soh(p) for p in PRODUCTS}
    queue = store.world.queue
    store.accept(ImportKind.PARTIAL, {"a": 7}, 20)  # the 9th: it merges the 8
    # It stops between its record's completion and the location's release.
    store.world.repo.fail_next("complete_import", TimeoutError("stopped"), after_writes=1)
    with pytest.raises(TimeoutError):
        store.world.run_queue()
    purge, delay = queue.messages[-1], queue.delays[-1]
    assert purge["layers"] == list(range(2, 2 + PARTIAL_LAYERS))
    assert delay == 900

    store.world.imports.purge(LayerPurge.model_validate(queue.messages.pop()), lambda: 10**9)  # still running
    assert queue.messages[-1]["released_seen"] is False  # it waits, a delay at a time
    assert all(rows_of(store, seq) == 2 for seq in range(2, 2 + PARTIAL_LAYERS))

    queue.messages.insert(0, {"location_id": "s1", "import_id": store.running})  # the redelivery
    store.complete()  # completes, and the purge's last wait is over after one more delay
    location = store.world.repo.get_location("s1")
    assert location is not None
    assert [v.seq for v in location.visible_imports] == [1, 2 + PARTIAL_LAYERS]
    assert all(rows_of(store, seq) == 0 for seq in range(2, 2 + PARTIAL_LAYERS))
    assert rows_of(store, 1) == len(PRODUCTS)
    assert {p: store.world.soh(p) for p in PRODUCTS} == before | {"a": 7}
    store.check()


def test_a_failed_import_s_own_rows_are_purged_and_the_layers_it_would_have_merged_stay() -> None:
    store = Store()
    store.accept(ImportKind.INITIAL, dict.fromkeys(PRODUCTS, 100), 0)
    store.complete()
    for n in range(PARTIAL_LAYERS):
        store.accept(ImportKind.PARTIAL, {PRODUCTS[n % 4]: n}, n)
        store.complete()
    store.accept(ImportKind.PARTIAL, {"b": 1}, 20)
    message = store.world.queue.messages.pop(0)
    store.world.imports.run("s1", str(message["import_id"]), lambda: 0)
    seq = 2 + PARTIAL_LAYERS
    assert rows_of(store, seq) == 1
    store.world.imports.abandon("s1", str(message["import_id"]), "the test gives it up")
    store.world.queue.messages = [m for m in store.world.queue.messages if "layers" in m]
    store.world.run_queue()

    assert rows_of(store, seq) == 0
    assert all(rows_of(store, s) == 1 for s in range(2, seq))
    location = store.world.repo.get_location("s1")
    assert location is not None
    assert len(location.partial_layers()) == PARTIAL_LAYERS
    for product in PRODUCTS:
        assert store.world.soh(product) == ({PRODUCTS[n % 4]: n for n in range(PARTIAL_LAYERS)}.get(product, 100))


def test_a_hot_item_keeps_at_most_64_epoch_pointers_however_old_the_merged_rows_origins() -> None:
    drop, cut = kept_at_most(list(range(3, 73)), below=2, cut=0)  # 70 epochs, all above the oldest origin

    assert drop == [3, 4, 5, 6, 7, 8]
    assert cut == 9  # a base of an epoch below it reads the pages from the first one
    assert kept_at_most(list(range(3, 10)), below=5, cut=0) == ([3, 4], 0)
