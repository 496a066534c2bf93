"""The one backoff rule: waits double with each failure in a row, up to a cap, at random below that
ceiling; a success starts again from the first."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from inventory.backoff import Backoff, backoff_seconds


def test_each_failure_in_a_row_doubles_the_ceiling_up_to_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=15.0, rand=lambda: 1.0)  # always the ceiling

    ceilings = [backoff.failed() for _ in range(7)]

    assert ceilings == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert backoff.failures == 7


def test_a_success_starts_again_from_the_first_wait() -> None:
    backoff = Backoff(base=0.5, cap=30.0, rand=lambda: 1.0)
    for _ in range(5):
        backoff.failed()

    backoff.succeeded()

    assert (backoff.failures, backoff.failed(), backoff.failed()) == (0, 0.5, 1.0)


def test_the_waits_are_spread_below_the_ceiling_so_callers_do_not_come_back_together() -> None:
    rand = random.Random(7).random
    waits = [backoff_seconds(4, base=1.0, cap=60.0, rand=rand) for _ in range(1000)]

    assert all(0 <= w < 16.0 for w in waits)
    assert 7.0 < sum(waits) / len(waits) < 9.0  # about half the ceiling
    assert len({round(w, 3) for w in waits}) > 900


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.001, max_value=10), st.floats(0, 1))
def test_a_wait_never_exceeds_the_cap_however_many_failures(attempt: int, base: float, draw: float) -> None:
    assert 0 <= backoff_seconds(attempt, base=base, cap=20.0, rand=lambda: draw) <= 20.0
