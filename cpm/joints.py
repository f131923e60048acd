"""Visibility, and how the joints of one keypoint spec (cpm.keypoints) become those of another.

Coordinates everywhere are 0-based pixels (x right, y down); readers convert 1-based formats on the way in.
Visibility follows COCO's convention for every dataset, so one set of rules serves all readers:

    UNANNOTATED = 0   no position is known: no target peak and zero loss weight
    OCCLUDED    = 1   position annotated but hidden: trained like a visible joint
    VISIBLE     = 2   position annotated and visible

Readers deliver each dataset's own joints (its spec: LSP's lsp14, MPII's mpii16, ...). A model of another spec trains
on them through a JointMap: a joint of the same name is copied, a joint DERIVED declares for the pair of specs is an
affine combination of source joints (COCO's neck for lsp14 is the mean of the shoulders), and any other target joint
is unannotated: never invented. A derived joint is annotated only if every source joint it uses is.
"""
import functools
from dataclasses import dataclass

import numpy as np

from cpm import keypoints

UNANNOTATED, OCCLUDED, VISIBLE = 0, 1, 2

#: The shipped model's joints (lsp14), which the tests' stick figures and fixtures use by name.
JOINT_NAMES = keypoints.LSP14.names
NUM_JOINTS = keypoints.LSP14.num_joints
JOINT_INDEX = keypoints.LSP14.index

#: COCO has neither neck nor head top: lsp14's head top is extrapolated from the shoulders' middle through the eyes'
#: by this share of that distance beyond the eyes (an approximation of ours, not a COCO definition).
COCO_HEAD_TOP_EXTENSION = 0.6
_e = COCO_HEAD_TOP_EXTENSION
_HIPS = {"left_hip": 0.5, "right_hip": 0.5}
_SHOULDERS = {"left_shoulder": 0.5, "right_shoulder": 0.5}
#: Joints of a target spec that a source spec gives under another name or as a combination, by (source, target):
#: {target joint: {source joint: weight}} with weights summing to 1. docs/data.md lists them.
DERIVED = {
    ("mpii16", "lsp14"): {"neck": {"upper_neck": 1.0}},
    ("jhmdb15", "lsp14"): {"head_top": {"head": 1.0}},
    ("coco17", "lsp14"): {
        "neck": _SHOULDERS,
        # eyes_mid + e * (eyes_mid - shoulders_mid)
        "head_top": {"left_eye": (1 + _e) / 2, "right_eye": (1 + _e) / 2, "left_shoulder": -_e / 2,
                     "right_shoulder": -_e / 2},
    },
    # MPII's pelvis lies between the hips and its thorax between the shoulders (their means, approximately)
    ("lsp14", "mpii16"): {"upper_neck": {"neck": 1.0}, "pelvis": _HIPS, "thorax": _SHOULDERS},
    ("jhmdb15", "mpii16"): {"upper_neck": {"neck": 1.0}, "head_top": {"head": 1.0}, "pelvis": _HIPS,
                            "thorax": _SHOULDERS},
    ("coco17", "mpii16"): {"pelvis": _HIPS, "thorax": _SHOULDERS},
    ("lsp14", "jhmdb15"): {"head": {"head_top": 1.0}},
    ("mpii16", "jhmdb15"): {"head": {"head_top": 1.0}, "neck": {"upper_neck": 1.0}},
}
del _e


@dataclass(frozen=True, eq=False)
class JointMap:
    """How joints of spec ``source`` become joints of spec ``target`` (joint_map builds it).

    Attributes:
        matrix: float64 [K_target, K_source]; target xy = matrix @ source xy; a zero row: no source.
        derived: target joints given by DERIVED; missing: target joints no source gives (always unannotated);
        dropped: source joints no target joint uses.
    """

    source: str
    target: str
    matrix: np.ndarray
    derived: tuple
    missing: tuple
    dropped: tuple

    @property
    def identity(self):
        return self.matrix.shape[0] == self.matrix.shape[1] and np.array_equal(self.matrix, np.eye(len(self.matrix)))

    def map_joints(self, joints):
        """Source joints float [..., K_source, 3] (x, y, visibility) -> float32 [..., K_target, 3]. A target joint
        takes the lowest visibility of its sources; without a source, or with one unannotated, it is unannotated at
        (0, 0)."""
        joints = np.asarray(joints, dtype=np.float64)
        if joints.shape[-2:] != (self.matrix.shape[1], 3):
            raise ValueError(f"{self.source} joints must have shape [..., {self.matrix.shape[1]}, 3], got "
                             f"{joints.shape}")
        xy = np.einsum("mk,...kc->...mc", self.matrix, joints[..., :2])
        used = self.matrix != 0
        vis = np.where(used, joints[..., None, :, 2], np.inf).min(axis=-1)
        vis[..., ~used.any(axis=1)] = UNANNOTATED
        xy[vis == UNANNOTATED] = 0.0
        return np.concatenate([xy, vis[..., None]], axis=-1).astype(np.float32)

    def describe(self):
        """One line: what is copied, derived, missing and dropped."""
        if self.identity:
            return f"{self.source} -> {self.target}: the same joints"
        parts = [f"{self.source} -> {self.target}: {self.matrix.shape[0] - len(self.derived) - len(self.missing)} "
                 f"joints by name"]
        if self.derived:
            parts.append(f"derived {', '.join(self.derived)}")
        if self.missing:
            parts.append(f"never annotated {', '.join(self.missing)}")
        if self.dropped:
            parts.append(f"unused {', '.join(self.dropped)}")
        return "; ".join(parts)


@functools.lru_cache(maxsize=64)
def joint_map(source, target):
    """The JointMap from spec ``source`` to spec ``target`` (cpm.keypoints.KeypointSpec; cached per pair)."""
    src = source.index
    matrix = np.zeros((target.num_joints, source.num_joints))
    derived = DERIVED.get((source.name, target.name), {})
    made, missing = [], []
    for t, name in enumerate(target.names):
        if name in src:
            matrix[t, src[name]] = 1.0
        elif name in derived and all(s in src for s in derived[name]):
            for s, w in derived[name].items():
                matrix[t, src[s]] = w
            made.append(name)
        else:
            missing.append(name)
    dropped = tuple(n for k, n in enumerate(source.names) if not matrix[:, k].any())
    return JointMap(source.name, target.name, matrix, tuple(made), tuple(missing), dropped)


def to_coco_keypoints(joints, spec):
    """A model's joints [K, >=2] of ``spec`` as a COCO result's flat keypoint list: for a person's set, COCO's 17
    [x1, y1, v1, ..., x17, y17, v17], each COCO keypoint the spec gives (joint_map) at v = 2, the others at 0, 0,
    v = 0; for another set (a hand, say; keypoint spec ``person`` false), its own K keypoints in its order, v = 2."""
    joints = np.asarray(joints, np.float64)
    if not spec.person:
        return [float(v) for v in np.c_[joints[:, :2], np.full(len(joints), 2.0)].ravel()]
    m = joint_map(spec, keypoints.COCO17)
    given = m.matrix.any(axis=1)
    out = np.zeros((keypoints.COCO17.num_joints, 3))
    out[given, :2] = m.matrix[given] @ joints[:, :2]
    out[given, 2] = 2
    return [float(v) for v in out.ravel()]
