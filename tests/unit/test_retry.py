"""Loops that give up: a step is tried again after the backoff rule's waits, then given up for now."""

from __future__ import annotations

import time

import pytest

from inventory.backoff import LOST_RACE, UNPROCESSED, RetryPolicy, retried
from inventory.errors import TemporarilyUnavailable


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def test_a_step_is_tried_until_it_has_a_result(waits: list[float]) -> None:
    answers = iter([None, None, "written"])

    assert retried(lambda: next(answers), RetryPolicy(attempts=5, base=0.1, cap=1.0), "never") == "written"
    assert len(waits) == 2  # a wait after each attempt that had none
    assert 0 <= waits[0] <= 0.1
    assert 0 <= waits[1] <= 0.2


@pytest.mark.parametrize("policy", [LOST_RACE, UNPROCESSED], ids=["lost race", "unprocessed"])
def test_after_the_last_attempt_the_step_is_given_up_for_now_each_wait_under_its_growing_capped_bound(
    waits: list[float], policy: RetryPolicy
) -> None:
    tried = []

    with pytest.raises(TemporarilyUnavailable, match="gave up"):
        retried(lambda: tried.append(1), policy, "gave up")

    assert len(tried) == len(waits) == policy.attempts
    assert all(0 <= wait <= min(policy.cap, policy.base * 2**n) for n, wait in enumerate(waits))
