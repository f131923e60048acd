"""The keypoint spec: which joints a model predicts and everything that follows from them.

One small frozen object per skeleton says its joint names (the model's output channels, in order), which joints are
mirror twins, the bones drawn in pictures, the limbs of strict PCP and their table rows, a belief-map sigma per joint,
COCO's OKS sigmas, PCK's torso, and the body-part schemes of the segmentation stages. Its JSON form (``to_dict`` /
``from_dict``) is what a run's config.json and a shipped model carry under the config key KEYPOINTS, so a folder
alone says what it predicts and stays readable when a built-in changes.

JSON fields (names, never indices; only ``name`` and ``joints`` are required):

    name         str
    joints       [str]                     output-channel order
    flip_pairs   [[left, right]]           default: every left_X with its right_X
    skeleton     [[a, b]]                  bones to draw; default none
    pcp_limbs    [{name, group, a: [str], b: [str]}]   an endpoint is the mean of its joints; default none (no PCP)
    sigmas       [float]                   belief sigma per joint, a multiple of DATA.SIGMA; default 1
    oks_sigmas   [float]                   COCO OKS sigma per joint; default DEFAULT_OKS_SIGMA
    torso        [a, b] | null             PCK's normaliser: the distance a-b; null: the longer side of the box
                                           around the person's annotated joints
    part_schemes {scheme: [{name, bones: [[a, b, radius]], polygon: [str]}]}   default none (no part stages)
    metric       pcp | pck@0.2 | pckh@0.5 | ap   the set's standard figure: the best checkpoint and time to quality
                                           follow it; default pck@0.2
    pckh_exclude [str]                     joints left out of PCKh's mean (MPII's convention: pelvis, thorax)
    person       bool                      the joints are a whole person's, whom the person detector finds
                                           (predicting without a box); default false: the whole image is posed
"""
import json
import os
from dataclasses import dataclass, field

import numpy as np

from cpm.errors import UserError
from cpm.parts import BODY, LSP_HEAD, Part, human_schemes

#: OKS sigma of a joint whose spec declares none: the mean of COCO's 17 published ones (rounded), a body joint's
#: typical annotation spread as a share of the person's size.
DEFAULT_OKS_SIGMA = 0.072
#: Figures a spec can name as its standard one (``metric``)
METRICS = ("pcp", "pck@0.2", "pckh@0.5", "ap")


class SpecError(UserError):
    """A keypoint spec that cannot be used; the message names the spec and the field."""


@dataclass(frozen=True)
class Limb:
    """A PCP limb: a segment between two endpoints, each the mean of one or more joints (indices)."""

    name: str
    group: str  # the row of the PCP table this limb is averaged into
    a: tuple
    b: tuple


@dataclass(frozen=True, eq=False)
class KeypointSpec:
    """A skeleton (the module docstring lists its JSON fields). Build with ``from_dict`` or ``load_spec``.

    Attributes:
        name: the spec's name.
        names: tuple of K joint names, the model's output-channel order.
        pairs: ((i, j), ...) mirror twins, i < j.
        skeleton: ((i, j), ...) bones to draw.
        limbs: tuple of Limb (strict PCP); groups: PCP table rows in first-seen order.
        sigmas: float [K] belief sigma of each joint as a multiple of DATA.SIGMA.
        oks_sigmas: float [K] COCO OKS sigmas.
        torso: (i, j) joints whose distance normalises PCK, or None (the annotated joints' box, its longer side).
        part_schemes: {scheme: tuple of cpm.parts.Part}.
        metric: the set's standard figure (METRICS).
        pckh_exclude: joint indices left out of PCKh's mean.
        person: whether the person detector finds what these joints belong to.
    """

    name: str
    names: tuple
    pairs: tuple
    skeleton: tuple
    limbs: tuple
    sigmas: tuple
    oks_sigmas: tuple
    torso: tuple
    part_schemes: dict = field(default_factory=dict)
    metric: str = "pck@0.2"
    pckh_exclude: tuple = ()
    person: bool = False

    @property
    def num_joints(self):
        return len(self.names)

    @property
    def index(self):
        """{joint name: output channel}."""
        return {n: i for i, n in enumerate(self.names)}

    @property
    def groups(self):
        """PCP table rows, in the order the limbs first name them."""
        return tuple(dict.fromkeys(limb.group for limb in self.limbs))

    @property
    def flip_permutation(self):
        """int64 [K]: ``joints[flip_permutation]`` relabels a mirrored person (each twin takes the other's place)."""
        perm = np.arange(self.num_joints)
        for i, j in self.pairs:
            perm[i], perm[j] = j, i
        return perm

    def parts(self, scheme):
        """The exclusive parts of ``scheme``, in label order (label k + 1 is part k)."""
        return self.part_schemes[scheme]

    def part_names(self, scheme):
        """Names of a scheme's output channels: the exclusive parts, then "body"."""
        return tuple(p.name for p in self.parts(scheme)) + (BODY,)

    def part_flip_permutation(self, scheme):
        """Index permutation of the exclusive parts that swaps left_* and right_* (label k + 1 <-> its twin)."""
        return tuple(int(i) for i in twin_permutation([p.name for p in self.parts(scheme)], None))

    def training_fields(self):
        """The TRAINING_FIELDS of the JSON form: what a run must keep to resume."""
        d = self.to_dict()
        return {k: d[k] for k in TRAINING_FIELDS}

    def to_dict(self):
        """The JSON form (lists and names only, so it compares equal after a round trip through a file)."""
        n = self.names
        return {
            "name": self.name,
            "joints": list(n),
            "flip_pairs": [[n[i], n[j]] for i, j in self.pairs],
            "skeleton": [[n[i], n[j]] for i, j in self.skeleton],
            "pcp_limbs": [{"name": lb.name, "group": lb.group, "a": [n[i] for i in lb.a], "b": [n[i] for i in lb.b]}
                          for lb in self.limbs],
            "sigmas": [float(s) for s in self.sigmas],
            "oks_sigmas": [float(s) for s in self.oks_sigmas],
            "torso": None if self.torso is None else [n[i] for i in self.torso],
            "part_schemes": {s: [{"name": p.name, "bones": [[n[a], n[b], float(r)] for a, b, r in p.bones],
                                  "polygon": [n[i] for i in p.polygon]} for p in parts]
                             for s, parts in self.part_schemes.items()},
            "metric": self.metric,
            "pckh_exclude": [n[i] for i in self.pckh_exclude],
            "person": self.person,
        }

    @classmethod
    def from_dict(cls, d, source=None):
        """A checked spec from its JSON form; a bad one raises SpecError naming ``source`` (default: its name) and
        the field."""
        where = f"keypoint spec {source or (d.get('name') if isinstance(d, dict) else None) or '?'}"

        def fail(key, why):
            raise SpecError(f"{where}: {key}: {why}")

        if not isinstance(d, dict):
            raise SpecError(f"{where}: expected a JSON object with at least 'name' and 'joints'")
        builtin = globals().get("BUILTIN", {}).get(d.get("name"))
        if builtin is not None and list(d.get("joints") or []) == list(builtin.names):
            d = {**builtin.to_dict(), **d}  # a built-in saved before a field existed takes today's value of it
        unknown = set(d) - set(_FIELDS)
        if unknown:
            fail(sorted(unknown)[0], f"unknown field (fields: {', '.join(_FIELDS)})")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            fail("name", "must be a non-empty string")
        names = d.get("joints")
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(s, str) and s for s in names):
            fail("joints", "must be a non-empty list of joint names")
        seen = set()
        for s in names:
            if s in seen:
                fail("joints", f"duplicate name {s!r}")
            seen.add(s)
        index = {s: i for i, s in enumerate(names)}

        def joint(key, s):
            if s not in index:
                fail(key, f"unknown joint {s!r}")
            return index[s]

        def joint_list(key, value, length=None):
            if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length) or not value:
                fail(key, f"must be a list of {length or 'one or more'} joint names, got {value!r}")
            return tuple(joint(key, s) for s in value)

        if "flip_pairs" in d:
            pairs = [joint_list("flip_pairs", p, 2) for p in d["flip_pairs"] or []]
            used = [i for p in pairs for i in p]
            if len(used) != len(set(used)) or any(i == j for i, j in pairs):
                fail("flip_pairs", "a joint is in more than one pair, or paired with itself")
            pairs = tuple(sorted((min(p), max(p)) for p in pairs))
        else:
            twins = twin_permutation(names, lambda why: fail("joints", why))
            pairs = tuple((i, int(j)) for i, j in enumerate(twins) if i < j)
        skeleton = tuple(joint_list("skeleton", e, 2) for e in d.get("skeleton") or [])
        limbs = []
        for k, limb in enumerate(d.get("pcp_limbs") or []):
            key = f"pcp_limbs[{k}]"
            if not isinstance(limb, dict) or not isinstance(limb.get("name"), str):
                fail(key, "must be an object with name, group, a and b")
            limbs.append(Limb(limb["name"], str(limb.get("group", limb["name"])), joint_list(key + ".a", limb.get("a")),
                              joint_list(key + ".b", limb.get("b"))))
        sigmas = _numbers(d.get("sigmas"), len(names), 1.0, "sigmas", fail)
        oks = _numbers(d.get("oks_sigmas"), len(names), DEFAULT_OKS_SIGMA, "oks_sigmas", fail)
        torso = d.get("torso")
        torso = None if torso is None else joint_list("torso", torso, 2)
        schemes = {}
        for scheme, parts in (d.get("part_schemes") or {}).items():
            key = f"part_schemes.{scheme}"
            if not isinstance(parts, (list, tuple)) or not parts:
                fail(key, "must be a non-empty list of parts")
            built = []
            for p in parts:
                if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p.get("bones"):
                    fail(key, "each part needs a name and one or more bones [a, b, radius]")
                bones = []
                for bone in p["bones"]:
                    if not isinstance(bone, (list, tuple)) or len(bone) != 3:
                        fail(f"{key}.{p['name']}", f"a bone is [joint a, joint b, radius], got {bone!r}")
                    a, b = joint_list(f"{key}.{p['name']}", bone[:2], 2)
                    if not isinstance(bone[2], (int, float)) or not bone[2] > 0:
                        fail(f"{key}.{p['name']}", f"a bone's radius must be > 0, got {bone[2]!r}")
                    bones.append((a, b, float(bone[2])))
                polygon = joint_list(f"{key}.{p['name']}.polygon", p["polygon"]) if p.get("polygon") else ()
                built.append(Part(p["name"], tuple(bones), polygon))
            if len({p.name for p in built}) != len(built):
                fail(key, "duplicate part names")
            schemes[str(scheme)] = tuple(built)
        metric = d.get("metric") or "pck@0.2"
        if metric not in METRICS:
            fail("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
        if metric == "pcp" and not limbs:
            fail("metric", "pcp needs pcp_limbs")
        exclude = tuple(joint("pckh_exclude", s) for s in d.get("pckh_exclude") or [])
        person = d.get("person", False)
        if not isinstance(person, bool):
            fail("person", f"must be true or false, got {person!r}")
        return cls(name, tuple(names), pairs, skeleton, tuple(limbs), sigmas, oks, torso, schemes, metric, exclude,
                   person)


#: The JSON fields a trained network depends on (its channels, their flips, targets and parts); the others (bones,
#: limbs, OKS sigmas, torso, metric) only score or draw and may change while a run resumes
TRAINING_FIELDS = ("joints", "flip_pairs", "sigmas", "part_schemes")
_FIELDS = ("name", "joints", "flip_pairs", "skeleton", "pcp_limbs", "sigmas", "oks_sigmas", "torso", "part_schemes",
           "metric", "pckh_exclude", "person")


def _numbers(values, count, default, key, fail):
    if values is None:
        return (float(default),) * count
    if not isinstance(values, (list, tuple)) or len(values) != count or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        fail(key, f"must be {count} numbers, one per joint")
    if min(values) <= 0:
        fail(key, "every sigma must be > 0")
    return tuple(float(v) for v in values)


def twin_permutation(names, fail):
    """Permutation swapping each left_X with right_X; a left_ without its right_ (or back) is ``fail``'s or its own."""
    index = {n: i for i, n in enumerate(names)}
    perm = []
    for n in names:
        twin = "right_" + n[5:] if n.startswith("left_") else "left_" + n[6:] if n.startswith("right_") else n
        if twin not in index:
            if fail:
                fail(f"{n!r} has no twin {twin!r}: declare flip_pairs")
            twin = n
        perm.append(index[twin])
    return np.array(perm, dtype=np.int64)


def _human(name, joints, skeleton, limbs, torso, head=LSP_HEAD, **more):
    return KeypointSpec.from_dict({
        "name": name, "joints": list(joints), "skeleton": [list(e) for e in skeleton],
        "pcp_limbs": [{"name": n, "group": g, "a": list(a), "b": list(b)} for n, g, a, b in limbs],
        "torso": list(torso) if torso else None, "part_schemes": human_schemes(head), "person": True, **more})


def _side_limbs():
    """The eight arm and leg limbs of strict PCP, by LSP's joint names."""
    return tuple((f"{side}_{part}", part, [f"{side}_{a}"], [f"{side}_{b}"]) for part, a, b in (
        ("upper_arm", "shoulder", "elbow"), ("lower_arm", "elbow", "wrist"), ("upper_leg", "hip", "knee"),
        ("lower_leg", "knee", "ankle")) for side in ("right", "left"))


def _side_bones():
    """Bones of both arms and legs and the girdles, by LSP's joint names."""
    return tuple((f"{side}_{a}", f"{side}_{b}") for side in ("right", "left") for a, b in (
        ("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))) + \
        (("right_shoulder", "left_shoulder"), ("right_hip", "left_hip"))


#: LSP's 14 joints in the order of the CPM release's LSP/MPII models: the shipped model's output channels.
LSP14 = _human(
    "lsp14",
    ("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
     "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle"),
    # the PCP limbs plus the shoulder and hip girdles
    (("head_top", "neck"), ("neck", "right_shoulder"), ("neck", "left_shoulder"),
     ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
     ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
     ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip"), ("right_hip", "left_hip"),
     ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
     ("left_hip", "left_knee"), ("left_knee", "left_ankle")),
    # The ten limbs of strict PCP on LSP. The torso runs from the neck to the middle of the hips: the set has no
    # pelvis, and that is the segment LSP evaluations score.
    (("head", "head", ["head_top"], ["neck"]),
     ("torso", "torso", ["neck"], ["right_hip", "left_hip"]),
     ("right_upper_arm", "upper_arm", ["right_shoulder"], ["right_elbow"]),
     ("left_upper_arm", "upper_arm", ["left_shoulder"], ["left_elbow"]),
     ("right_lower_arm", "lower_arm", ["right_elbow"], ["right_wrist"]),
     ("left_lower_arm", "lower_arm", ["left_elbow"], ["left_wrist"]),
     ("right_upper_leg", "upper_leg", ["right_hip"], ["right_knee"]),
     ("left_upper_leg", "upper_leg", ["left_hip"], ["left_knee"]),
     ("right_lower_leg", "lower_leg", ["right_knee"], ["right_ankle"]),
     ("left_lower_leg", "lower_leg", ["left_knee"], ["left_ankle"])),
    # PCK@0.2 on LSP normalises by the torso size: the distance from the left shoulder to the right hip
    ("left_shoulder", "right_hip"),
    metric="pcp",  # the shipped model's runs keep their best checkpoint by PCP, as they always have
)

#: MPII Human Pose's 16 joints, in its file order (ids 0..15). PCKh@0.5 leaves pelvis and thorax out of its mean, as
#: the literature reports it.
MPII16 = _human(
    "mpii16",
    ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax", "upper_neck",
     "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"),
    (("head_top", "upper_neck"), ("upper_neck", "thorax"), ("thorax", "pelvis"), ("thorax", "right_shoulder"),
     ("thorax", "left_shoulder"), ("pelvis", "right_hip"), ("pelvis", "left_hip")) + _side_bones(),
    (("head", "head", ["head_top"], ["upper_neck"]), ("torso", "torso", ["upper_neck"], ["pelvis"])) + _side_limbs(),
    ("left_shoulder", "right_hip"),
    head=(("head_top", "upper_neck", 0.08),),
    metric="pckh@0.5", pckh_exclude=["pelvis", "thorax"],
)

#: COCO's 17 keypoints, in its order, with its published OKS sigmas (pycocotools' COCOeval) and its skeleton. The
#: head part is drawn around the nose and ears (the set has no head top).
COCO17 = _human(
    "coco17",
    ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
     "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
     "right_ankle"),
    (("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"), ("right_knee", "right_hip"),
     ("left_hip", "right_hip"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
     ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
     ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("left_eye", "right_eye"), ("nose", "left_eye"),
     ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"), ("left_ear", "left_shoulder"),
     ("right_ear", "right_shoulder")),
    (("torso", "torso", ["left_shoulder", "right_shoulder"], ["left_hip", "right_hip"]),) + _side_limbs(),
    ("left_shoulder", "right_hip"),
    head=(("nose", "left_ear", 0.05), ("nose", "right_ear", 0.05), ("left_ear", "right_ear", 0.05)),
    oks_sigmas=[0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
                0.087, 0.089, 0.089],
    metric="ap",
)

#: JHMDB's 15 puppet joints, in the order of its joint_positions.mat. Its head point is the head's centre.
JHMDB15 = _human(
    "jhmdb15",
    ("neck", "belly", "head", "right_shoulder", "left_shoulder", "right_hip", "left_hip", "right_elbow", "left_elbow",
     "right_knee", "left_knee", "right_wrist", "left_wrist", "right_ankle", "left_ankle"),
    (("head", "neck"), ("neck", "belly"), ("neck", "right_shoulder"), ("neck", "left_shoulder"),
     ("belly", "right_hip"), ("belly", "left_hip")) + _side_bones(),
    (("head", "head", ["head"], ["neck"]), ("torso", "torso", ["neck"], ["right_hip", "left_hip"])) + _side_limbs(),
    ("left_shoulder", "right_hip"),
    head=(("head", "neck", 0.08),),
)

#: The built-in specs by name.
BUILTIN = {spec.name: spec for spec in (LSP14, MPII16, COCO17, JHMDB15)}
#: The spec of a config without KEYPOINTS (every run and model from before specs existed).
DEFAULT_SPEC = LSP14


def load_spec(name_or_path):
    """A built-in spec by name, or a user's from a JSON file (the module docstring's fields). One line on failure."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    if not os.path.isfile(name_or_path):
        raise SpecError(f"--joints {name_or_path}: neither a built-in set ({', '.join(BUILTIN)}) nor a JSON file")
    try:
        with open(name_or_path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise SpecError(f"--joints {name_or_path}: not readable as JSON ({e})") from None
    return KeypointSpec.from_dict(d, source=name_or_path)


def spec_of(cfg):
    """The keypoint spec of a config (its KEYPOINTS)."""
    return KeypointSpec.from_dict(cfg.KEYPOINTS)
