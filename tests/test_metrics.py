"""Metrics against hand-computed cases."""
import numpy as np
import pytest

from cpm.joints import JOINT_INDEX, UNANNOTATED
from cpm.keypoints import LSP14
from eval.metrics import format_report, pck_correct, pcp_correct, pose_scores, torso_size
from tests.helpers import stick_person

J = JOINT_INDEX
LIMB = {limb.name: i for i, limb in enumerate(LSP14.limbs)}


def test_perfect_prediction_scores_one():
    gt = stick_person()[None]
    s = pose_scores(gt[..., :2], gt, LSP14)
    assert s["pcp"] == 1 and s["pck@0.2"] == 1
    assert s["count"] == {"people": 1, "limbs": 10, "joints": 14}


def test_pcp_boundary_is_inclusive():
    gt = stick_person()[None]
    pred = gt[..., :2].copy()
    # Right upper arm: shoulder (40, 20) - elbow (40, 40), length 20, threshold 10.
    pred[0, J["right_shoulder"]] = (50, 20)  # exactly 10 px off: still correct
    assert pcp_correct(pred, gt, LSP14.limbs)[0, LIMB["right_upper_arm"]] == 1
    pred[0, J["right_shoulder"]] = (50.001, 20)
    got = pcp_correct(pred, gt, LSP14.limbs)[0]
    assert got[LIMB["right_upper_arm"]] == 0
    # Strict PCP: the other limbs keep their own endpoints and stay correct.
    assert np.nansum(got) == 9


def test_pcp_torso_uses_the_middle_of_the_hips():
    gt = stick_person()[None]
    pred = gt[..., :2].copy()
    # Torso: neck (50, 20) to mid-hip (50, 60), length 40, threshold 20. Move both hips right by 20: mid-hip on the
    # boundary, so the torso is still correct, while each upper leg (length 30, threshold 15) fails.
    pred[0, [J["right_hip"], J["left_hip"]], 0] += 20
    got = pcp_correct(pred, gt, LSP14.limbs)[0]
    assert got[LIMB["torso"]] == 1
    assert got[LIMB["right_upper_leg"]] == 0 and got[LIMB["left_upper_leg"]] == 0


def test_missing_joints_are_not_scored():
    gt = stick_person()[None].copy()
    gt[0, J["left_wrist"]] = (0, 0, UNANNOTATED)
    pred = gt[..., :2].copy()
    pred[0, J["right_ankle"]] = (0, 0)  # wrong: right lower leg fails, right ankle fails PCK
    pcp = pcp_correct(pred, gt, LSP14.limbs)[0]
    assert np.isnan(pcp[LIMB["left_lower_arm"]])
    s = pose_scores(pred, gt, LSP14)
    assert s["count"]["limbs"] == 9 and s["count"]["joints"] == 13
    assert s["pcp"] == pytest.approx(8 / 9)
    assert s["per_limb"]["lower_arm"] == 1.0  # only the right lower arm is scored
    assert s["per_limb"]["lower_leg"] == 0.5
    assert s["pck@0.2"] == pytest.approx(12 / 13)
    assert s["per_joint"]["right_ankle"] == 0 and np.isnan(s["per_joint"]["left_wrist"])


def test_pck_threshold_is_a_fifth_of_the_torso():
    gt = stick_person()[None]
    # Torso size: left shoulder (60, 20) to right hip (44, 60) = sqrt(16^2 + 40^2).
    size = np.hypot(16, 40)
    assert torso_size(gt, LSP14.torso)[0] == pytest.approx(size)
    pred = gt[..., :2].copy()
    pred[0, J["neck"], 0] += 0.2 * size  # on the threshold: correct
    pred[0, J["head_top"], 0] += 0.2 * size + 1e-3  # just past it: wrong
    c = pck_correct(pred, gt, torso_size(gt, LSP14.torso))[0]
    assert c[J["neck"]] == 1 and c[J["head_top"]] == 0 and np.nansum(c) == 13


def test_pck_without_a_torso_is_not_scored():
    gt = stick_person()[None].copy()
    gt[0, J["right_hip"], 2] = UNANNOTATED
    assert np.isnan(torso_size(gt, LSP14.torso)[0])
    assert np.isnan(pck_correct(gt[..., :2], gt, torso_size(gt, LSP14.torso))).all()


def test_format_report_prints_percentages():
    gt = stick_person()[None]
    text = format_report(pose_scores(gt[..., :2], gt, LSP14), "val")
    assert text.startswith("val: 1 people, 10 limbs and 14 joints scored") and "100.0" in text
    assert "PCKh" not in text  # only reports that have it print it
