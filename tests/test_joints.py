import numpy as np

from cpm.joints import (
    COCO17,
    JHMDB15,
    JOINT_INDEX,
    JOINT_NAMES,
    LSP14,
    MPII16,
    OCCLUDED,
    UNANNOTATED,
    VISIBLE,
)
from cpm.keypoints import LSP14 as LSP_SPEC


def test_model_joint_names_are_the_documented_ones():
    assert JOINT_NAMES == ("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                           "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
                           "left_knee", "left_ankle")


def test_flip_permutation_swaps_sides_and_is_an_involution():
    FLIP_PERMUTATION = LSP_SPEC.flip_permutation
    np.testing.assert_array_equal(FLIP_PERMUTATION[FLIP_PERMUTATION], np.arange(14))
    assert JOINT_NAMES[FLIP_PERMUTATION[JOINT_INDEX["left_knee"]]] == "right_knee"
    assert FLIP_PERMUTATION[JOINT_INDEX["neck"]] == JOINT_INDEX["neck"]
    assert len(LSP_SPEC.pairs) == 6


def test_pcp_limbs_are_the_ten_lsp_limbs():
    assert len(LSP_SPEC.limbs) == 10
    torso = [limb for limb in LSP_SPEC.limbs if limb.name == "torso"][0]
    assert torso.a == (JOINT_INDEX["neck"],) and set(torso.b) == {JOINT_INDEX["right_hip"], JOINT_INDEX["left_hip"]}


def _src(joint_set, values):
    j = np.zeros((len(joint_set.names), 3))
    for name, v in values.items():
        j[joint_set.names.index(name)] = v
    return j


def test_lsp_and_mpii_map_by_name():
    lsp = np.arange(42, dtype=float).reshape(14, 3)
    lsp[:, 2] = VISIBLE
    mapped = LSP14.map_joints(lsp)
    assert tuple(mapped[JOINT_INDEX["head_top"], :2]) == (39, 40)  # LSP index 13
    assert tuple(mapped[JOINT_INDEX["right_ankle"], :2]) == (0, 1)
    mpii = _src(MPII16, {"upper_neck": (5, 6, VISIBLE), "thorax": (9, 9, VISIBLE)})
    assert tuple(MPII16.map_joints(mpii)[JOINT_INDEX["neck"]]) == (5, 6, VISIBLE)
    jhmdb = _src(JHMDB15, {"head": (3, 4, VISIBLE)})
    assert tuple(JHMDB15.map_joints(jhmdb)[JOINT_INDEX["head_top"]]) == (3, 4, VISIBLE)


def test_coco_derived_joints():
    coco = _src(COCO17, {"left_shoulder": (10, 50, VISIBLE), "right_shoulder": (30, 50, OCCLUDED),
                         "left_eye": (18, 30, VISIBLE), "right_eye": (22, 30, VISIBLE)})
    mapped = COCO17.map_joints(coco)
    np.testing.assert_allclose(mapped[JOINT_INDEX["neck"]], (20, 50, OCCLUDED))  # lowest visibility of the two
    # Eyes' middle (20, 30) plus 0.6 of the neck-to-eyes vector (0, -20).
    np.testing.assert_allclose(mapped[JOINT_INDEX["head_top"]], (20, 18, OCCLUDED), atol=1e-9)
    coco[COCO17.names.index("right_eye"), 2] = UNANNOTATED
    assert tuple(COCO17.map_joints(coco)[JOINT_INDEX["head_top"]]) == (0, 0, UNANNOTATED)
