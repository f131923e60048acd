"""Joint sets of the supported datasets and their mapping onto the 14 joints of cpm.keypoints.LSP14.

Coordinates everywhere are 0-based pixels (x right, y down); readers convert 1-based formats on the way in.
Visibility follows COCO's convention for every dataset, so one set of rules serves all readers:

    UNANNOTATED = 0   no position is known: no target peak and zero loss weight
    OCCLUDED    = 1   position annotated but hidden: trained like a visible joint
    VISIBLE     = 2   position annotated and visible

Each dataset joint set maps onto the model's joints through a matrix ``W [14, K_src]`` whose rows sum to 1: a
one-hot row copies a joint, other rows are affine combinations (COCO's neck is the mean of the shoulders).
A model joint is annotated only if every source joint it uses is.
"""
from dataclasses import dataclass

import numpy as np

from cpm import keypoints
from cpm.keypoints import twin_permutation

UNANNOTATED, OCCLUDED, VISIBLE = 0, 1, 2

#: The model's joints: today's readers map every dataset onto LSP's 14 (cpm.keypoints.LSP14).
JOINT_NAMES = keypoints.LSP14.names
NUM_JOINTS = keypoints.LSP14.num_joints
JOINT_INDEX = keypoints.LSP14.index


@dataclass(frozen=True)
class JointSet:
    """A dataset's joint set: its names, left/right pairs, and how it becomes the model's 14 joints.

    The per-dataset config of the MARS pose trainer (docs/references.md: number of parts, names, left/right pairs,
    a sigma per part) is split between these sets (what a dataset stores) and cpm.keypoints (what a model predicts).

    Attributes:
        name: joint-set name (the dataset's, or "model").
        names: joint names in the set's order (file order for a dataset).
        to_model: float64 [14, K]; model xy = to_model @ set xy.
    """

    name: str
    names: tuple
    to_model: np.ndarray

    @property
    def num_joints(self):
        return len(self.names)

    @property
    def flip_permutation(self):
        """int64 [K]: ``joints[flip_permutation]`` relabels a mirrored person (left_* and right_* swap)."""
        return twin_permutation(self.names, None)

    @property
    def flip_pairs(self):
        """Left/right pairs as (i, j) index pairs, i < j."""
        return tuple((i, int(j)) for i, j in enumerate(self.flip_permutation) if i < j)

    def map_joints(self, joints):
        """Map dataset joints onto the model's joint set.

        Args:
            joints: float [..., K_src, 3] (x, y, visibility in {0, 1, 2}).
        Returns:
            float32 [..., 14, 3]. A derived joint takes the lowest visibility of its sources; if any source is
            unannotated it is unannotated with position (0, 0).
        """
        joints = np.asarray(joints, dtype=np.float64)
        if joints.shape[-2:] != (len(self.names), 3):
            raise ValueError(f"{self.name} joints must have shape [..., {len(self.names)}, 3], got {joints.shape}")
        xy = np.einsum("mk,...kc->...mc", self.to_model, joints[..., :2])
        used = self.to_model != 0  # 14 x K_src
        vis = np.where(used, joints[..., None, :, 2], np.inf).min(axis=-1)  # ... x 14
        xy[vis == UNANNOTATED] = 0.0
        return np.concatenate([xy, vis[..., None]], axis=-1).astype(np.float32)


def _joint_set(name, names, sources):
    """Build a JointSet from ``sources``: model joint name -> {source joint name: weight} (weights sum to 1)."""
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((NUM_JOINTS, len(names)))
    for model_name, weights in sources.items():
        if not np.isclose(sum(weights.values()), 1.0):
            raise AssertionError(f"{name}: weights of {model_name} must sum to 1")
        for src, w in weights.items():
            matrix[JOINT_INDEX[model_name], index[src]] = w
    if set(sources) != set(JOINT_NAMES):
        raise AssertionError(f"{name}: every model joint needs a source")
    return JointSet(name, tuple(names), matrix)


def _same_names(names):
    return {n: {n: 1.0} for n in JOINT_NAMES if n in names}


#: The model's own joint set, the identity mapping (a TFRecord of ours stores model joints).
MODEL_JOINTS = _joint_set("model", JOINT_NAMES, _same_names(JOINT_NAMES))


#: LSP and LSPET: 14 joints in the release's order (lsp_dataset/README.txt).
LSP14 = _joint_set("lsp", (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "neck", "head_top",
), _same_names(JOINT_NAMES))

#: MPII Human Pose (ids 0..15). Pelvis and thorax have no model joint; the model's neck is MPII's upper neck.
_MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)
MPII16 = _joint_set("mpii", _MPII_NAMES, {**_same_names(_MPII_NAMES), "neck": {"upper_neck": 1.0}})

#: JHMDB puppet joints (order of the release's joint_positions.mat). JHMDB marks the head's centre, not its top:
#: it stands in for head_top, which makes head limbs shorter than on LSP/MPII.
_JHMDB_NAMES = (
    "neck", "belly", "head", "right_shoulder", "left_shoulder", "right_hip", "left_hip",
    "right_elbow", "left_elbow", "right_knee", "left_knee", "right_wrist", "left_wrist",
    "right_ankle", "left_ankle",
)
JHMDB15 = _joint_set("jhmdb", _JHMDB_NAMES, {**_same_names(_JHMDB_NAMES), "head_top": {"head": 1.0}})

#: COCO keypoints. COCO has neither neck nor head top: the neck is the mean of the shoulders, and the head top is
#: extrapolated from the neck through the middle of the eyes by COCO_HEAD_TOP_EXTENSION of that distance (an
#: approximation of ours, not a COCO definition).
COCO_HEAD_TOP_EXTENSION = 0.6
_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_e = COCO_HEAD_TOP_EXTENSION
COCO17 = _joint_set("coco", _COCO_NAMES, {
    **_same_names(_COCO_NAMES),
    "neck": {"left_shoulder": 0.5, "right_shoulder": 0.5},
    # eyes_mid + e * (eyes_mid - shoulders_mid)
    "head_top": {"left_eye": (1 + _e) / 2, "right_eye": (1 + _e) / 2,
                 "left_shoulder": -_e / 2, "right_shoulder": -_e / 2},
})
del _e

#: COCO keypoint k for each model joint of the same name (12 of the 14; COCO has no neck or head top), and the COCO
#: keypoints no model joint gives (nose, eyes, ears).
COCO_FROM_MODEL = {_COCO_NAMES.index(n): JOINT_NAMES.index(n) for n in _COCO_NAMES if n in JOINT_NAMES}


def to_coco_keypoints(joints):
    """Model joints [14, >=2] as COCO's flat keypoint list [x1, y1, v1, ..., x17, y17, v17]: the 12 joints COCO
    shares with the model at v = 2, nose, eyes and ears (which the model does not predict) at 0, 0, v = 0."""
    out = np.zeros((len(_COCO_NAMES), 3))
    for k, j in COCO_FROM_MODEL.items():
        out[k] = (joints[j][0], joints[j][1], 2)
    return [float(v) for v in out.ravel()]


#: Every joint set by name: the datasets' and the model's (a TFRecord of ours stores model joints).
JOINT_SETS = {js.name: js for js in (MODEL_JOINTS, LSP14, MPII16, JHMDB15, COCO17)}
