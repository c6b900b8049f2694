import numpy as np

from lanesim.sim.collision import boxes_overlap


def overlap(a, b):
    return bool(boxes_overlap(*a, *b))


def test_touching_rectangles_collide():
    assert overlap((0, 0, 0, 4, 2), (4, 0, 0, 4, 2))  # nose touches tail
    assert overlap((0, 0, 0, 4, 2), (0, 2, 0, 4, 2))  # sides touch


def test_near_miss_rectangles_do_not_collide():
    assert not overlap((0, 0, 0, 4, 2), (4.05, 0, 0, 4, 2))
    assert not overlap((0, 0, 0, 4, 2), (0, 2.05, 0, 4, 2))


def test_rotated_rectangle_corner_hits_only_when_it_reaches():
    # A box rotated 45° has corners sqrt(2) * 1 = 1.414 m from its centre along the x-axis.
    half_diag = np.sqrt(2.0)
    rot = (0, 0, np.pi / 4, 2, 2)
    assert overlap(rot, (half_diag + 1.0 - 0.01, 0, 0, 2, 2))
    assert not overlap(rot, (half_diag + 1.0 + 0.01, 0, 0, 2, 2))


def test_diagonal_near_miss_that_axis_aligned_bounds_would_flag():
    # The bounding boxes overlap, but the rotated rectangles do not.
    a = (0, 0, np.pi / 4, 4, 1)
    b = (1.6, -1.6, np.pi / 4, 4, 1)
    assert not overlap(a, b)


def test_vectorized_over_pairs():
    x2 = np.array([3.9, 4.1, 0.0])
    hit = boxes_overlap(0.0, 0.0, 0.0, 4.0, 2.0, x2, 0.0, 0.0, 4.0, 2.0)
    assert hit.tolist() == [True, False, True]
