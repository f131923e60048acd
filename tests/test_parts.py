"""Part segmentation: skeleton-derived targets, flips, person masks, model outputs and part IoU."""
import os

import numpy as np
import pytest

from cpm import names
from cpm.config import build_config
from cpm.joints import JOINT_INDEX, VISIBLE
from cpm.keypoints import LSP14
from dataflow import transforms
from dataflow.geometry import Geometry
from dataflow.mapper import CropMapper
from dataflow.records import PersonRecord
from dataflow.targets import PartCodec
from dataflow.transforms import Augment
from eval.metrics import part_counts, part_iou
from tests.helpers import build_model, stick_person

SIZE = 184
PERSON = 117.0  # px: the person size of a cpu-preset crop (200 x TARGET_DIST 41/70)
STICK = {"head_top": (92, 30), "neck": (92, 50), "right_shoulder": (80, 52), "left_shoulder": (104, 52),
         "right_elbow": (70, 75), "left_elbow": (114, 75), "right_wrist": (62, 98), "left_wrist": (122, 98),
         "right_hip": (84, 100), "left_hip": (100, 100), "right_knee": (82, 128), "left_knee": (102, 128),
         "right_ankle": (80, 158), "left_ankle": (104, 158)}


def stick_figure():
    joints = np.zeros((14, 3))
    joints[:, 2] = VISIBLE
    for name, xy in STICK.items():
        joints[JOINT_INDEX[name], :2] = xy
    return joints


def _distance_to_segment(px, py, a, b):
    """Brute-force distance of points to a segment: the minimum over 200 points sampled along it."""
    t = np.linspace(0, 1, 200)
    sx, sy = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
    return np.sqrt((px[..., None] - sx) ** 2 + (py[..., None] - sy) ** 2).min(axis=-1)


@pytest.mark.parametrize("scheme", list(LSP14.part_schemes))
def test_each_part_covers_its_bones_and_not_far_beyond(scheme):
    joints = stick_figure()
    labels = PartCodec(LSP14.parts(scheme), np.arange(SIZE)).encode(joints, PERSON)
    for k, part in enumerate(LSP14.parts(scheme), start=1):
        ys, xs = np.nonzero(labels == k)
        assert len(xs) > 0, part.name
        reach = np.full(len(xs), np.inf)
        for a, b, radius in part.bones:
            # the middle 80 % of every bone is labelled with its part
            for t in np.linspace(0.1, 0.9, 9):
                x, y = joints[a, :2] + t * (joints[b, :2] - joints[a, :2])
                assert labels[int(round(y)), int(round(x))] == k, (part.name, t)
            reach = np.minimum(reach, _distance_to_segment(xs, ys, joints[a], joints[b]) / (radius * PERSON))
        if not part.polygon:  # the torso's polygon interior is its own; everything else lies within its capsules
            assert reach.max() <= 1.0 + 1.0 / (0.035 * PERSON)  # one pixel of rounding
    assert (labels[:20] == 0).all() and (labels[:, :40] == 0).all()  # far from the figure: background


def test_the_torso_fills_the_shoulder_hip_quadrilateral():
    labels = PartCodec(LSP14.parts("seed7"), np.arange(SIZE)).encode(stick_figure(), PERSON)
    assert (labels[60:95, 88:97] == LSP14.part_names("seed7").index("torso") + 1).all()


def test_a_person_mask_is_the_body_and_its_pixels_go_to_the_nearest_part():
    joints = stick_figure()
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[25:165, 55:130] = 1  # a loose box: more than the capsules cover
    labels = PartCodec(LSP14.parts("seed7"), np.arange(SIZE)).encode(joints, PERSON, mask)
    np.testing.assert_array_equal(labels > 0, mask > 0)
    names = LSP14.part_names("seed7")
    assert labels[160, 58] == names.index("right_leg") + 1  # a box corner far from any capsule: nearest bone
    assert labels[26, 92] == names.index("head") + 1


def _record():
    return PersonRecord("unused.jpg", stick_figure(), (92.0, 94.0), 0.6, "test")


def test_a_flip_swaps_left_and_right_parts():
    cfg = build_config("cpu")
    geometry = Geometry.from_config(cfg)
    record = _record()
    image = np.full((SIZE, SIZE, 3), 100, np.uint8)
    mappers = [CropMapper([record], geometry, augment=Augment.only(FLIP_PROB=p), seed=0,
                          part_codec=geometry.part_codec(dense=False)) for p in (0.0, 1.0)]
    (plain, flipped) = [mp.part_targets(record, image.shape, *mp.crop(record, image)[1:3])[0] for mp in mappers]
    order = np.concatenate([[0], np.asarray(LSP14.part_flip_permutation("seed7")) + 1])
    np.testing.assert_array_equal(order[flipped[:, ::-1]], plain)
    names = LSP14.part_names("seed7")
    assert order[names.index("left_arm") + 1] == names.index("right_arm") + 1
    assert (plain == names.index("left_arm") + 1).sum() > 0


def test_unannotated_joints_give_no_part_target():
    cfg = build_config("cpu")
    record = _record()
    record.joints[JOINT_INDEX["left_wrist"], 2] = 0
    geometry = Geometry.from_config(cfg)
    mapper = CropMapper([record], geometry, part_codec=geometry.part_codec(dense=True))
    image = np.full((SIZE, SIZE, 3), 100, np.uint8)
    labels, weight = mapper.part_targets(record, image.shape, *mapper.crop(record, image)[1:3])
    assert weight == 0 and labels.shape == (184, 184) and not labels.any()


@pytest.mark.parametrize("scheme, channels", [("seed7", 8), ("limbs", 12)])
def test_model_outputs_and_datapoint_shapes(scheme, channels):
    cfg, graph, _ = build_model("cpu", **{"MODEL.PART_SCHEME": scheme})
    # background + exclusive parts (softmax) + body (sigmoid)
    assert graph.get_tensor_by_name(names.FINAL_PARTS + ":0").shape.as_list() == [None, 23, 23, channels]
    assert graph.get_tensor_by_name(names.part_stage_loss(2) + ":0").shape.as_list() == []
    assert len(LSP14.part_names(scheme)) == channels - 1
    record = _record()
    image = np.full((SIZE, SIZE, 3), 100, np.uint8)
    for train, side in ((True, 23), (False, 184)):
        geometry = Geometry.from_config(cfg)
        mapper = CropMapper([record], geometry, augment=Augment.only() if train else None,
                            part_codec=geometry.part_codec(dense=not train))
        labels, weight = mapper.part_targets(record, image.shape, *mapper.crop(record, image)[1:3])
        assert labels.shape == (side, side) and labels.dtype == np.uint8 and weight == 1
        assert set(np.unique(labels)) == set(range(channels - 1))  # every part appears


def test_part_iou_hand_checked():
    gt = np.array([[0, 1, 1], [2, 2, 0]])
    pred = np.array([[1, 1, 0], [2, 0, 0]])
    body = pred > 0
    valid = np.ones((2, 3))
    inter, union = part_counts(pred, body, gt, valid, num_parts=2)
    # part 1: pred {(0,0),(0,1)}, gt {(0,1),(0,2)} -> 1 / 3; part 2: pred {(1,0)}, gt {(1,0),(1,1)} -> 1 / 2;
    # body: pred {(0,0),(0,1),(1,0)}, gt {(0,1),(0,2),(1,0),(1,1)} -> 2 / 5
    np.testing.assert_array_equal(inter, [1, 1, 2])
    np.testing.assert_array_equal(union, [3, 2, 5])
    report = part_iou(inter, union, ("a", "b", "body"))
    assert report["part_iou"] == pytest.approx({"a": 1 / 3, "b": 1 / 2, "body": 2 / 5})
    assert report["mean_part_iou"] == pytest.approx((1 / 3 + 1 / 2 + 2 / 5) / 3)
    valid[0] = 0  # pixels outside the image are not scored
    np.testing.assert_array_equal(part_counts(pred, body, gt, valid, 2)[1], [0, 2, 2])


def test_joint_flip_permutation_is_consistent_with_part_flip():
    names = LSP14.part_names("limbs")[:-1]
    perm = LSP14.part_flip_permutation("limbs")
    assert all(names[perm[k]] == n.replace("left", "x").replace("right", "left").replace("x", "right")
               for k, n in enumerate(names))
    assert LSP14.flip_permutation[JOINT_INDEX["left_wrist"]] == JOINT_INDEX["right_wrist"]


def test_the_skeleton_baseline_drawn_around_the_annotated_joints_is_the_target():
    """The parts drawn around predicted joints (eval.inference.PosePredictor.drawn_parts, the baseline every part
    output is compared with) are the part targets when the prediction is the annotation: IoU 1 for every part; a
    prediction nowhere near the person, and a miss, overlap nothing and count."""
    from dataflow.images import read_image  # noqa: PLC0415
    from dataflow.lsp import read_lsp  # noqa: PLC0415
    from eval.evaluate import PartScores  # noqa: PLC0415
    from eval.inference import PosePredictor  # noqa: PLC0415

    records = read_lsp(os.path.join(os.path.dirname(__file__), "fixtures", "lsp_val"), "1-6")
    predictor = PosePredictor(build_config("cpu", ["MODEL.PART_STAGES=0"]), network=lambda images, maps: None)
    assert predictor.part_names is None and predictor.drawn_part_names == LSP14.part_names("seed7")
    exact, wrong = PartScores(predictor, records), PartScores(predictor, records)
    assert list(exact.flows) == ["skeleton"]
    for r in records:
        shape = read_image(r.image).shape
        exact.add(r, shape, r.joints)
        wrong.add(r, shape, r.joints + [5000, 0, 0] if r is not records[0] else np.full_like(r.joints, np.nan))
    report = exact.report()
    assert set(report) == {"skeleton_part_iou", "skeleton_mean_part_iou", "part_people"} and report["part_people"] == 6
    assert report["skeleton_part_iou"] == pytest.approx(dict.fromkeys(LSP14.part_names("seed7"), 1.0), abs=1e-3)
    missed = wrong.report()
    assert missed["skeleton_mean_part_iou"] == 0 and missed["part_people"] == 6


def test_a_frozen_keypoint_network_trains_only_its_part_layers():
    """MODEL.FREEZE_KEYPOINTS: the trunk and belief stages are out of the trainable variables (no update, no weight
    decay) and their batch norms update no statistics; the part head alone trains."""
    import tensorflow as tf  # noqa: PLC0415

    cfg, graph, _ = build_model("cpu", **{"MODEL.PART_STAGES": 0, "MODEL.PART_HEAD": 1, "MODEL.FREEZE_KEYPOINTS": True,
                                          "MODEL.BATCH_NORM": True})
    with graph.as_default():
        trainable = tf.compat.v1.trainable_variables()
        updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
        names_ = {v.name.split("/")[0] for v in tf.compat.v1.global_variables()}
    assert trainable and all(v.name.startswith("part_head/") for v in trainable)
    assert {"conv1_1", "stage1", f"stage{cfg.MODEL.STAGES}"} <= names_  # the frozen layers keep their names
    assert updates and all(op.name.startswith("part_head/") for op in updates)
    parts = graph.get_tensor_by_name(names.FINAL_PARTS + ":0")
    assert parts.shape[1:] == (cfg.DATA.INPUT_SIZE // 4, cfg.DATA.INPUT_SIZE // 4, len(LSP14.part_names("seed7")) + 1)


def test_the_part_head_draws_the_skeleton_of_its_beliefs_as_the_targets_are_drawn():
    """The part head's drawn-skeleton input (and, untrained, its output) is the part labels a PartCodec draws on its
    stride-4 grid around the joints at the belief peaks (hand-placed on cells)."""
    import tensorflow as tf  # noqa: PLC0415

    from cpm.model import CPMModel  # noqa: PLC0415

    cfg = build_config("cpu", ["MODEL.PART_STAGES=0", "MODEL.PART_HEAD=1"])
    geometry = Geometry.from_config(cfg)
    model = CPMModel.from_config(cfg, geometry)
    n = model.part_map_size
    cells = np.round((stick_person()[:, :2] + [20, 20] - 1.5) / 4).astype(int)  # the joints on grid cells
    assert cells.max() < n
    # beliefs already on the stride-4 grid (the resize to it then keeps them), one peak per joint
    beliefs = np.zeros((1, n, n, 15), np.float32)
    beliefs[0, cells[:, 1], cells[:, 0], np.arange(14)] = 1.0
    with tf.Graph().as_default():
        drawn = model.drawn_skeleton(tf.constant(beliefs))
        with tf.compat.v1.Session() as sess:
            values = sess.run(drawn)[0]
    labels = np.where(values.max(axis=2) > 0, values.argmax(axis=2) + 1, 0)
    joints = np.c_[geometry.part_grid[cells], np.ones(14)]
    extent = (joints[:, :2].max(axis=0) - joints[:, :2].min(axis=0)).max()
    expected = geometry.part_codec(dense=False).encode(joints, extent)
    assert (labels == expected).mean() > 0.99 and set(np.unique(expected)) == set(range(7))


class _Mask:
    """A person mask (dataflow.masks' interface) of constant value over the image."""

    def __init__(self, shape, value):
        self.shape, self.value = shape, value

    def load(self):
        return np.full(self.shape, self.value, np.uint8)


def test_bodies_are_scored_against_human_drawn_silhouettes_apart():
    """A person with a person mask: the part targets stay drawn from the skeleton (IoU 1 for the annotation), and
    each flow's body is scored against the mask on its own: a mask of the whole image gives the drawn body's share
    of the crop pixels that show the image; an empty mask, 0."""
    import dataclasses  # noqa: PLC0415

    from dataflow.images import read_image  # noqa: PLC0415
    from dataflow.lsp import read_lsp  # noqa: PLC0415
    from eval.evaluate import PartScores  # noqa: PLC0415
    from eval.inference import PosePredictor  # noqa: PLC0415

    (record,) = read_lsp(os.path.join(os.path.dirname(__file__), "fixtures", "lsp_val"), "1-1")
    shape = read_image(record.image).shape
    predictor = PosePredictor(build_config("cpu", ["MODEL.PART_STAGES=0"]), network=lambda images, maps: None)
    m = predictor.geometry.affine(record.center, record.scale)
    valid = transforms.image_mask(shape, m, predictor.geometry.input_size) != 0
    _, body = predictor.drawn_parts(record.joints, m, valid)
    for value, expected in ((1, (body & valid).sum() / valid.sum()), (0, 0.0)):
        scores = PartScores(predictor, [record])
        scores.add(dataclasses.replace(record, mask=_Mask(shape[:2], value)), shape, record.joints)
        report = scores.report()
        assert report["skeleton_silhouette_body_iou"] == pytest.approx(expected)
        assert report["silhouette_people"] == 1 and report["skeleton_mean_part_iou"] == pytest.approx(1, abs=1e-3)
