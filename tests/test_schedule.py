"""The learning-rate schedule against values worked out by hand."""

import math

import pytest

from minisumm.schedule import lr_at

PEAK, MIN = 1e-3, 1e-4


def lr(step, warmup=10, total=110):
    return lr_at(step, peak=PEAK, warmup_steps=warmup, total_steps=total, min_lr=MIN)


def test_warmup_is_linear_from_one_step_in():
    assert lr(0) == pytest.approx(PEAK * 1 / 10)
    assert lr(4) == pytest.approx(PEAK * 5 / 10)


def test_peak_at_end_of_warmup_and_first_decay_step():
    assert lr(9) == pytest.approx(PEAK)  # last warmup step
    assert lr(10) == pytest.approx(PEAK)  # cosine progress 0


def test_cosine_midpoint_and_end():
    # 100 decay steps: step 60 is half way, cos(pi/2) = 0, so the rate is the mean of peak and floor
    assert lr(60) == pytest.approx((PEAK + MIN) / 2)
    assert lr(35) == pytest.approx(MIN + 0.5 * (PEAK - MIN) * (1 + math.cos(math.pi * 0.25)))
    assert lr(110) == pytest.approx(MIN)
    assert lr(500) == pytest.approx(MIN)  # never below the floor


def test_no_warmup_starts_at_peak_and_decreases():
    values = [lr(s, warmup=0, total=20) for s in range(21)]
    assert values[0] == pytest.approx(PEAK)
    assert all(a >= b for a, b in zip(values, values[1:]))
