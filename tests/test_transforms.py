import cv2
import numpy as np
import pytest

from cpm.config import build_config
from cpm.joints import JOINT_INDEX, JOINT_NAMES, VISIBLE
from cpm.keypoints import LSP14
from dataflow.geometry import Geometry
from dataflow.mapper import make_mapper
from dataflow.records import PersonRecord
from dataflow.transforms import (
    Augment,
    apply_affine,
    color_jitter,
    crop_affine,
    image_mask,
    invert_affine,
    pad_center_scale,
    transform_joints,
    warp_image,
)

SIZE = 368


def _joints(rng):
    j = np.zeros((len(JOINT_NAMES), 3), np.float32)
    j[:, :2] = rng.uniform(20, 180, (len(JOINT_NAMES), 2))
    j[:, 2] = VISIBLE
    return j


def test_flip_mirrors_x_and_swaps_left_right():
    rng = np.random.default_rng(0)
    joints = _joints(rng)
    kw = dict(center=(100, 100), scale=0.8, size=SIZE, target_dist=41 / 35, zoom=1.1, rotate_deg=17)
    plain = transform_joints(crop_affine(**kw), joints)
    flipped = transform_joints(crop_affine(**kw, flip=True), joints, LSP14.flip_permutation)
    li, ri = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    # The joint labelled left after the flip is the mirrored right one, and vice versa.
    np.testing.assert_allclose(flipped[li, 0], SIZE - 1 - plain[ri, 0], atol=1e-4)
    np.testing.assert_allclose(flipped[li, 1], plain[ri, 1], atol=1e-4)
    np.testing.assert_allclose(flipped[:, 0], SIZE - 1 - plain[LSP14.flip_permutation, 0], atol=1e-4)
    hn = JOINT_INDEX["head_top"]
    np.testing.assert_allclose(flipped[hn, :2], (SIZE - 1 - plain[hn, 0], plain[hn, 1]), atol=1e-4)


def test_flipped_pixels_are_reversed_columns():
    # A smooth image: OpenCV 4 rounds source positions to 1/32 px, which on pure noise alone moves bicubic values
    # by several grey levels; on natural-looking content the two crops agree to rounding.
    noise = np.random.default_rng(1).integers(0, 255, (150, 90, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(noise, (0, 0), 3)
    kw = dict(center=(45, 75), scale=0.6, size=SIZE, target_dist=41 / 35)
    plain = warp_image(image, crop_affine(**kw), SIZE)
    flipped = warp_image(image, crop_affine(**kw, flip=True), SIZE)
    diff = np.abs(flipped.astype(int) - plain[:, ::-1])
    assert diff.max() <= 1 and (diff > 0).mean() < 0.05


def test_rotation_moves_a_marked_pixel_and_its_joint_together():
    image = np.zeros((200, 200, 3), np.uint8)
    image[59:62, 149:152] = 255  # a 3x3 white mark centred on (150, 60)
    joints = np.zeros((len(JOINT_NAMES), 3), np.float32)
    joints[0] = (150, 60, VISIBLE)
    # target_dist == scale: no resizing, so the mark stays 3 px wide.
    m = crop_affine(center=(100, 100), scale=1.0, size=SIZE, target_dist=1.0, rotate_deg=90)
    crop = warp_image(image, m, SIZE, pad_value=0)
    ys, xs = np.nonzero(crop[:, :, 0] > 127)
    mark = np.array([xs.mean(), ys.mean()])
    joint = transform_joints(m, joints)[0, :2]
    np.testing.assert_allclose(mark, joint, atol=1.0)
    # A 90 degree counter-clockwise turn about the centre: (+50, -40) from the centre becomes (-40, -50).
    np.testing.assert_allclose(joint, ((SIZE - 1) / 2 - 40, (SIZE - 1) / 2 - 50), atol=1e-6)


def test_crop_to_original_round_trip_within_a_pixel():
    rng = np.random.default_rng(2)
    joints = _joints(rng)
    aug = Augment.only(SCALE_MIN=0.7, SCALE_MAX=1.3, ROTATE_MAX=40.0, FLIP_PROB=0.5, SHIFT_MAX=20.0, BBOX_PAD_PROB=1.0,
                       BBOX_PAD_MAX=0.3)
    for _ in range(20):
        g = aug.sample_geometry(rng, np.array([100.0, 100.0]), 0.8)
        m = crop_affine(size=SIZE, target_dist=41 / 35, **g)
        crop = transform_joints(m, joints, LSP14.flip_permutation if g["flip"] else None)
        if g["flip"]:
            crop = crop[LSP14.flip_permutation]  # undo the relabelling, as a predictor does
        back = apply_affine(invert_affine(m), crop)
        np.testing.assert_allclose(back[:, :2], joints[:, :2], atol=1e-3)


def test_scale_normalisation_makes_the_person_234px():
    # scale 0.75 = a person 150 px tall; TARGET_DIST 41/35 sizes it to 200 * 41/35 = 234.3 px.
    m = crop_affine(center=(0, 0), scale=0.75, size=SIZE, target_dist=41 / 35)
    top, bottom = apply_affine(m, np.array([[0.0, -75.0], [0.0, 75.0]]))
    np.testing.assert_allclose(bottom[1] - top[1], 200 * 41 / 35, rtol=1e-9)


def test_strong_downscale_is_antialiased():
    # A fine checkerboard shrunk 8x must average to grey, not alias into stripes.
    board = (np.indices((800, 800)).sum(axis=0) % 2 * 255).astype(np.uint8)
    board = cv2.merge([board] * 3)
    m = crop_affine(center=(400, 400), scale=8.0, size=SIZE, target_dist=1.0)
    crop = warp_image(board, m, SIZE)
    inner = crop[150:220, 150:220, 0].astype(float)
    assert abs(inner.mean() - 127.5) < 3 and inner.std() < 3


def test_box_padding_moves_and_grows_the_box():
    center, scale = pad_center_scale((100.0, 100.0), 1.0, (0.1, 0.0, 0.3, 0.0))  # 200 px box: 20 px left, 60 right
    np.testing.assert_allclose(center, (120.0, 100.0))
    np.testing.assert_allclose(scale, 280 / 200)


def test_photometric_augmentations_keep_shape_and_change_pixels():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    aug = Augment.only(COLOR_PROB=1, COLOR_GAMMA=0.3, COLOR_CONTRAST=0.3, COLOR_BRIGHTNESS=0.1, BLUR_PROB=1,
                       BLUR_MAX_KERNEL=7, NOISE_PROB=1, NOISE_STD=10, JPEG_PROB=1, JPEG_QUALITY_MIN=20,
                       JPEG_QUALITY_MAX=30)
    out = aug.photometric(rng, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image).mean() > 5
    # Identity jitter is the identity; gamma < 1 brightens mid-greys.
    np.testing.assert_array_equal(color_jitter(image, 1.0, 1.0, 0.0), image)
    grey = np.full((4, 4, 3), 128, np.uint8)
    assert color_jitter(grey, 0.5, 1.0, 0.0)[0, 0, 0] == int(255 * (128 / 255) ** 0.5)


def test_image_mask_marks_crop_pixels_from_inside_the_image():
    m = crop_affine(center=(40, 60), scale=0.9, size=SIZE, target_dist=41 / 35, rotate_deg=23)
    mask = image_mask((120, 80), m, SIZE)
    ys, xs = np.nonzero(mask)
    src = apply_affine(invert_affine(m), np.stack([xs, ys], axis=1).astype(float))
    assert src[:, 0].min() >= -1e-9 and src[:, 0].max() <= 79 + 1e-9
    assert src[:, 1].min() >= -1e-9 and src[:, 1].max() <= 119 + 1e-9
    # The image, scaled by (41/35) / 0.9, covers its own area times that scale squared (rotation keeps areas).
    assert mask.sum() == pytest.approx(79 * 119 * (41 / 35 / 0.9) ** 2, rel=0.03)


def test_augment_reads_the_aug_group_and_refuses_unknown_keys():
    assert Augment.only(FLIP_PROB=1.0).aug.FLIP_PROB == 1.0 and Augment.only().aug.ROTATE_MAX == 0.0
    assert Augment.only().aug.COLOR_GAMMA == 0.3  # keys that OFF leaves alone keep the config's default
    with pytest.raises(KeyError, match="FLIP"):
        Augment.only(FLIP=1.0)


def test_frame_cut_keeps_the_joints_box_plus_its_margin_clipped_to_the_image():
    joints = np.zeros((len(JOINT_NAMES), 3), np.float32)
    joints[:, 0], joints[:, 1], joints[:, 2] = np.linspace(10, 50, 14), np.linspace(20, 120, 14), VISIBLE
    joints[3, 2] = 0  # unannotated (UNANNOTATED) joints do not count, wherever they lie
    joints[3, :2] = (500, 500)
    rng = np.random.default_rng(0)
    tight = Augment.only(FRAME_CUT_PROB=1.0, FRAME_CUT_MARGIN=0.0)
    assert tight.frame_cut(rng, joints, (200, 100, 3)) == (10, 20, 50, 120)
    # margins of up to half the box (40 x 100 px) a side, clipped to the 100 x 200 image
    loose = Augment.only(FRAME_CUT_PROB=1.0, FRAME_CUT_MARGIN=0.5)
    for _ in range(20):
        x0, y0, x1, y1 = loose.frame_cut(rng, joints, (200, 100, 3))
        assert 0 <= x0 <= 10 and 0 <= y0 <= 20 and 50 <= x1 <= 70 and 120 <= y1 <= 170
    assert Augment.only().frame_cut(rng, joints, (200, 100, 3)) is None  # probability 0: never, and no draw


def test_a_frame_cut_crop_is_padding_outside_the_kept_part():
    joints = np.zeros((len(JOINT_NAMES), 3), np.float32)
    joints[:, 0], joints[:, 1], joints[:, 2] = np.linspace(40, 60, 14), np.linspace(50, 150, 14), VISIBLE
    record = PersonRecord(image="x.jpg", joints=joints, center=np.array([50.0, 100.0], np.float32), scale=0.5,
                          dataset="lsp")
    off = [f"AUG.{k}={v}" for k, v in Augment.OFF.items()]
    cfg = build_config("cpu", [*off, "AUG.FRAME_CUT_PROB=1.0", "AUG.FRAME_CUT_MARGIN=0.0", "DATA.PAD_VALUE=128"])
    image = np.full((200, 100, 3), 250, np.uint8)
    crop, m, _, _ = make_mapper([record], Geometry.from_config(cfg), cfg.AUG, seed=0).crop(record, image)
    # the kept part, x 40-60 and y 50-150 of the image, is image; around it (3 px off its edges for the bicubic
    # ramp) the crop is padding, although the image goes on
    (cx0, cy0), (cx1, cy1) = apply_affine(m, np.array([[40.0, 50.0], [60.0, 150.0]]))
    inside = crop[int(cy0) + 3:int(cy1) - 3, int(cx0) + 3:int(cx1) - 3]
    outside = np.concatenate([crop[:int(cy0) - 3].reshape(-1, 3), crop[int(cy1) + 3:].reshape(-1, 3),
                              crop[:, :int(cx0) - 3].reshape(-1, 3), crop[:, int(cx1) + 3:].reshape(-1, 3)])
    assert inside.size and (inside == 250).all() and (outside == 128).all()
