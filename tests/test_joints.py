"""Joint maps between keypoint specs: by name, derived as declared, never invented."""
import numpy as np

from cpm.joints import OCCLUDED, UNANNOTATED, VISIBLE, joint_map, to_coco_keypoints
from cpm.keypoints import COCO17, JHMDB15, LSP14, MPII16
from dataflow.records import PersonRecord, describe_mapping, map_records

J = LSP14.index


def test_model_joint_names_are_the_documented_ones():
    assert LSP14.names == ("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                           "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
                           "left_knee", "left_ankle")


def _src(spec, values):
    j = np.zeros((spec.num_joints, 3))
    for name, v in values.items():
        j[spec.index[name]] = v
    return j


def test_mpii_and_jhmdb_map_onto_lsp14_by_name_and_as_declared():
    mpii = _src(MPII16, {"upper_neck": (5, 6, VISIBLE), "thorax": (9, 9, VISIBLE), "left_knee": (1, 2, OCCLUDED)})
    mapped = joint_map(MPII16, LSP14).map_joints(mpii)
    assert tuple(mapped[J["neck"]]) == (5, 6, VISIBLE) and tuple(mapped[J["left_knee"]]) == (1, 2, OCCLUDED)
    jhmdb = _src(JHMDB15, {"head": (3, 4, VISIBLE)})
    assert tuple(joint_map(JHMDB15, LSP14).map_joints(jhmdb)[J["head_top"]]) == (3, 4, VISIBLE)
    m = joint_map(MPII16, LSP14)
    assert m.derived == ("neck",) and m.missing == () and m.dropped == ("pelvis", "thorax")
    assert m.describe() == "mpii16 -> lsp14: 13 joints by name; derived neck; unused pelvis, thorax"


def test_coco_derived_joints():
    coco = _src(COCO17, {"left_shoulder": (10, 50, VISIBLE), "right_shoulder": (30, 50, OCCLUDED),
                         "left_eye": (18, 30, VISIBLE), "right_eye": (22, 30, VISIBLE)})
    mapped = joint_map(COCO17, LSP14).map_joints(coco)
    np.testing.assert_allclose(mapped[J["neck"]], (20, 50, OCCLUDED))  # lowest visibility of the two
    # Eyes' middle (20, 30) plus 0.6 of the neck-to-eyes vector (0, -20).
    np.testing.assert_allclose(mapped[J["head_top"]], (20, 18, OCCLUDED), atol=1e-9)
    coco[COCO17.index["right_eye"], 2] = UNANNOTATED
    assert tuple(joint_map(COCO17, LSP14).map_joints(coco)[J["head_top"]]) == (0, 0, UNANNOTATED)


def test_an_mpii16_model_on_lsp_gets_pelvis_and_thorax_only_as_declared():
    lsp = np.zeros((14, 3))
    lsp[:, 2] = VISIBLE
    lsp[J["left_hip"], :2], lsp[J["right_hip"], :2] = (10, 100), (30, 104)
    lsp[J["left_shoulder"], :2], lsp[J["right_shoulder"], :2] = (8, 40), (32, 40)
    lsp[J["neck"], :2] = (20, 30)
    m = joint_map(LSP14, MPII16)
    out = m.map_joints(lsp)
    np.testing.assert_allclose(out[MPII16.index["pelvis"]], (20, 102, VISIBLE))  # the hips' mean
    np.testing.assert_allclose(out[MPII16.index["thorax"]], (20, 40, VISIBLE))  # the shoulders' mean
    np.testing.assert_allclose(out[MPII16.index["upper_neck"]], (20, 30, VISIBLE))
    # a set with no declared mapping leaves a joint unannotated rather than invent it: coco17 -> jhmdb15's belly
    assert "belly" in joint_map(COCO17, JHMDB15).missing
    belly = joint_map(COCO17, JHMDB15).map_joints(np.ones((17, 3)) * VISIBLE)[JHMDB15.index["belly"]]
    assert tuple(belly) == (0, 0, UNANNOTATED)


def test_records_map_onto_a_models_spec():
    mpii = _src(MPII16, {"upper_neck": (5, 6, VISIBLE), "head_top": (5, 1, VISIBLE)})
    r = PersonRecord("a.jpg", mpii, (5.0, 5.0), 1.0, "mpii", head_size=3.0, joint_set=MPII16)
    lsp_record = PersonRecord("b.jpg", np.zeros((14, 3)), (5.0, 5.0), 1.0, "lsp")
    mapped = map_records([r, lsp_record], LSP14)
    assert mapped[1] is lsp_record and mapped[0].joint_set is LSP14 and mapped[0].head_size == 3.0
    assert tuple(mapped[0].joints[J["neck"]]) == (5, 6, VISIBLE)
    assert describe_mapping([r, lsp_record, r], LSP14) == [joint_map(MPII16, LSP14).describe()]


def test_coco_keypoints_of_any_spec():
    joints = np.arange(42, dtype=float).reshape(14, 3)
    kp = np.array(to_coco_keypoints(joints, LSP14)).reshape(17, 3)
    np.testing.assert_array_equal(kp[:5], 0)  # nose, eyes, ears: lsp14 has none
    np.testing.assert_array_equal(kp[COCO17.index["left_shoulder"]], (*joints[J["left_shoulder"], :2], 2))
    coco = np.arange(51, dtype=float).reshape(17, 3)
    kp = np.array(to_coco_keypoints(coco, COCO17)).reshape(17, 3)
    np.testing.assert_array_equal(kp[:, :2], coco[:, :2])  # all 17, in place
    assert (kp[:, 2] == 2).all()
