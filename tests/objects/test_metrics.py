"""CLEAR-MOT and HOTA on hand-made sequences with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefuse.objects import clear_mot, distance_similarity, hota


def test_perfect_tracking() -> None:
    g = [[1, 2]] * 5
    s = [np.eye(2)] * 5
    cm = clear_mot(g, g, s)
    assert (cm.mota, cm.motp, cm.id_switches) == (1.0, 1.0, 0)
    h = hota(g, g, s)
    assert h.hota == pytest.approx(1.0) and h.deta == pytest.approx(1.0) and h.assa == pytest.approx(1.0)


def test_one_id_switch() -> None:
    # one object over 4 frames, tracked as id 7 then id 8
    g = [[1]] * 4
    hyp = [[7], [7], [8], [8]]
    s = [np.ones((1, 1))] * 4
    cm = clear_mot(g, hyp, s)
    assert cm.id_switches == 1 and cm.mota == pytest.approx(0.75)
    h = hota(g, hyp, s)
    # DetA = 1; each TP's association: TPA 2, FNA 2, FPA 0 → 0.5
    assert h.deta == pytest.approx(1.0) and h.assa == pytest.approx(0.5)
    assert h.hota == pytest.approx(math.sqrt(0.5))


def test_misses_false_positives_and_localisation() -> None:
    # 2 objects, 3 frames; frame 1 misses object 2, frame 2 has a clutter hypothesis
    g = [[1, 2], [1, 2], [1, 2]]
    hyp = [[10, 20], [10], [10, 20, 30]]
    s = [np.array([[0.8, 0.0], [0.0, 0.6]]), np.array([[0.8], [0.0]]),
         np.array([[0.8, 0.0, 0.0], [0.0, 0.6, 0.0]])]
    cm = clear_mot(g, hyp, s, threshold=0.5)
    assert (cm.false_negatives, cm.false_positives, cm.id_switches) == (1, 1, 0)
    assert cm.mota == pytest.approx(1 - 2 / 6)
    assert cm.motp == pytest.approx((0.8 * 3 + 0.6 * 2) / 5)
    h = hota(g, hyp, s)
    # at α ≤ 0.6 all 5 matches count; above 0.6 only object 1's (3); above 0.8 none
    assert h.hota_alpha[0] > h.hota_alpha[13] > 0.0 and h.hota_alpha[-1] == 0.0
    a = 0  # α = 0.05: TP 5, FN 1, FP 1 → DetA 5/7; AssA: obj1 3/3, obj2 2/(3+2-2)=2/3
    assert h.hota_alpha[a] == pytest.approx(math.sqrt(5 / 7 * (3 * 1 + 2 * (2 / 3)) / 5))


def test_distance_similarity() -> None:
    s = distance_similarity([[0, 0]], [[1, 0], [5, 0]], max_dist=2.0)
    np.testing.assert_allclose(s, [[0.5, 0.0]])
