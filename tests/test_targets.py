import cv2
import numpy as np
import pytest

from cpm.joints import NUM_JOINTS, OCCLUDED, UNANNOTATED, VISIBLE
from dataflow.targets import GAUSSIAN_CUTOFF, BeliefCodec, center_map, joint_weights

CODEC = BeliefCodec(368, 8, [7.0] * NUM_JOINTS)


def _joints(rng):
    j = np.zeros((NUM_JOINTS, 3))
    j[:, :2] = rng.uniform(10, 358, (NUM_JOINTS, 2))
    j[:, 2] = VISIBLE
    return j


def test_grid_is_the_reference_one():
    np.testing.assert_allclose(CODEC.grid[:3], [3.5, 11.5, 19.5])
    assert CODEC.map_size == 46 and CODEC.grid[-1] == 3.5 + 8 * 45


def test_argmax_within_one_cell_and_background_is_one_minus_max():
    rng = np.random.default_rng(0)
    joints = _joints(rng)
    maps = CODEC.encode(joints)
    assert maps.shape == (46, 46, NUM_JOINTS + 1) and maps.dtype == np.float32
    for k in range(NUM_JOINTS):
        gy, gx = np.unravel_index(maps[:, :, k].argmax(), (46, 46))
        assert abs(CODEC.grid[gx] - joints[k, 0]) <= 8 and abs(CODEC.grid[gy] - joints[k, 1]) <= 8
    np.testing.assert_allclose(maps[:, :, -1], np.maximum(1 - maps[:, :, :-1].max(axis=2), 0), atol=1e-6)


def test_peak_value_and_cutoff():
    joints = np.zeros((NUM_JOINTS, 3))
    joints[:, 2] = UNANNOTATED
    joints[0] = (3.5 + 8 * 20, 3.5 + 8 * 10, VISIBLE)  # exactly on cell (row 10, column 20)
    maps = CODEC.encode(joints)
    assert maps[10, 20, 0] == pytest.approx(1.0)
    assert maps[10, 21, 0] == pytest.approx(np.exp(-64 / 98), rel=1e-6)
    nonzero = maps[:, :, 0][maps[:, :, 0] > 0]
    assert nonzero.min() >= np.exp(-GAUSSIAN_CUTOFF) * 0.999
    # Cells beyond sqrt(2 * 4.6052) * 7 = 21.2 px are exactly zero.
    assert maps[10, 23, 0] == 0 and maps[10, 22, 0] > 0


def test_unannotated_and_outside_joints_get_no_peak_and_weights():
    rng = np.random.default_rng(1)
    joints = _joints(rng)
    joints[3, 2] = UNANNOTATED
    joints[4, :2] = (-5, 100)  # annotated, outside the crop
    joints[5, 2] = OCCLUDED
    maps = CODEC.encode(joints)
    assert maps[:, :, 3].max() == 0 and maps[:, :, 4].max() == 0
    assert maps[:, :, 5].max() > np.exp(-32 / 98)  # occluded still gets a peak; at most half a cell off a centre
    np.testing.assert_array_equal(joint_weights(joints), [1, 1, 1, 0] + [1] * (NUM_JOINTS - 4) + [1])


def test_several_people_combine_by_max():
    rng = np.random.default_rng(2)
    a, b = _joints(rng), _joints(rng)
    both = CODEC.encode(np.stack([a, b]))
    np.testing.assert_allclose(both[:, :, :-1], np.maximum(CODEC.encode(a), CODEC.encode(b))[:, :, :-1], atol=1e-6)


def test_per_joint_sigmas_widen_their_own_map():
    sigmas = [7.0] * NUM_JOINTS
    sigmas[2] = 14.0
    codec = BeliefCodec(368, 8, sigmas)
    joints = np.tile([[180.0, 180.0, VISIBLE]], (NUM_JOINTS, 1))
    maps = codec.encode(joints)
    assert (maps[:, :, 2] > 0).sum() > 3 * (maps[:, :, 1] > 0).sum()


def test_encode_then_decode_within_half_a_cell():
    rng = np.random.default_rng(3)
    for _ in range(10):
        joints = _joints(rng)
        decoded = CODEC.decode(CODEC.encode(joints))
        assert decoded.shape == (NUM_JOINTS, 3)
        assert np.abs(decoded[:, :2] - joints[:, :2]).max() <= 4.0
        assert (decoded[:, 2] > 0.5).all()


def test_bicubic_upsampling_decodes_finer_than_a_cell():
    # what evaluation decodes: the arg-max pixel of the maps upsampled to crop px. A bilinear map peaks on a cell
    # centre (errors up to half a cell, 4 px); the bicubic one keeps the peak within a pixel.
    codec = BeliefCodec(184, 8, [7.0] * NUM_JOINTS)
    rng = np.random.default_rng(3)
    errors = {cv2.INTER_CUBIC: [], cv2.INTER_LINEAR: []}
    for _ in range(10):
        joints = np.zeros((NUM_JOINTS, 3))
        joints[:, :2], joints[:, 2] = rng.uniform(10, 174, (NUM_JOINTS, 2)), VISIBLE
        maps = codec.encode(joints)
        for interpolation, e in errors.items():
            e.append(np.abs(codec.decode_dense(codec.upsample(maps, interpolation))[:, :2] - joints[:, :2]))
    cubic, linear = np.concatenate(errors[cv2.INTER_CUBIC]), np.concatenate(errors[cv2.INTER_LINEAR])
    assert cubic.max() < 1.0 and cubic.mean() < 0.4
    assert linear.max() > 3.0 and linear.mean() > 1.4  # a uniform error over +-4 px would average 2
    np.testing.assert_array_equal(codec.upsample(maps), codec.upsample(maps, cv2.INTER_CUBIC))  # the default


def test_center_map_peaks_at_the_centre_cell():
    cmap = center_map((100.0, 250.0), 368, 8, 21.0)
    assert cmap.shape == (46, 46, 1) and cmap.dtype == np.float32
    gy, gx = np.unravel_index(cmap[:, :, 0].argmax(), (46, 46))
    assert (gx, gy) == (100 // 8, 250 // 8)
    # Pooling the full-resolution map by 8 gives the same values as the separable computation.
    px = np.arange(368)
    full = np.exp(-((px[None] - 100.0) ** 2 + (px[:, None] - 250.0) ** 2) / (2 * 21.0 ** 2))
    np.testing.assert_allclose(cmap[:, :, 0], full.reshape(46, 8, 46, 8).mean(axis=(1, 3)), atol=1e-6)
