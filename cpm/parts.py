"""Body-part schemes for the segmentation stages: which bones make up each part, and how thick they are.

No dataset here has human-drawn part masks, so part targets are derived from the skeleton (dataflow.targets
.PartCodec): each part is the union of capsules around its bones (radius = a fraction of the person's size, the
crop's 200 x scale px) and, for the torso, the filled shoulder-hip quadrilateral. Where a dataset supplies a person
mask, the mask is the body and each of its pixels goes to the nearest part.

A scheme's exclusive parts partition the person (every body pixel has exactly one part); the model adds the whole
body as one more channel. Label 0 is the background. A keypoint spec (cpm.keypoints) carries its schemes, by joint
name; human_schemes builds those of a human body.
"""
from dataclasses import dataclass

BODY = "body"


@dataclass(frozen=True)
class Part:
    """An exclusive body part.

    Attributes:
        name: part name.
        bones: ((joint a, joint b, radius), ...): capsules around segments between joints (indices into the spec's
            joints); radius is a fraction of the person's size (SCALE_UNIT_PX x scale).
        polygon: joints of a filled polygon that also belongs to the part (the torso), or ().
    """

    name: str
    bones: tuple
    polygon: tuple = ()

    @property
    def joints(self):
        """Joints the part is drawn from: it is unknown unless all are annotated."""
        return tuple(sorted({j for a, b, _ in self.bones for j in (a, b)} | set(self.polygon)))


def _part(name, bones, polygon=()):
    return {"name": name, "bones": [list(b) for b in bones], "polygon": list(polygon)}


# Radii as fractions of the person's size; for a 234 px person (the paper preset's crop) the head is ~38 px wide,
# a thigh ~28 px and a forearm ~16 px, close to adult proportions.
LSP_HEAD = (("head_top", "neck", 0.08),)
_TORSO = _part("torso", [("right_shoulder", "left_shoulder", 0.04), ("left_shoulder", "left_hip", 0.04),
                         ("left_hip", "right_hip", 0.04), ("right_hip", "right_shoulder", 0.04)],
               ["right_shoulder", "left_shoulder", "left_hip", "right_hip"])


def _limb(side, upper, lower, a, b, c, r_upper, r_lower):
    return (_part(f"{side}_{upper}", [(f"{side}_{a}", f"{side}_{b}", r_upper)]),
            _part(f"{side}_{lower}", [(f"{side}_{b}", f"{side}_{c}", r_lower)]))


def _merge(name, parts):
    return _part(name, sum((p["bones"] for p in parts), []))


_LIMBS = {(side, kind): _limb(side, f"upper_{kind}", f"lower_{kind}", *joints, *radii)
          for side in ("left", "right")
          for kind, joints, radii in (("arm", ("shoulder", "elbow", "wrist"), (0.045, 0.035)),
                                      ("leg", ("hip", "knee", "ankle"), (0.06, 0.045)))}


def human_schemes(head=LSP_HEAD):
    """Part schemes of a human body, in a keypoint spec's JSON form: exclusive parts in channel order (label k + 1);
    the body channel follows them in the model. Shoulders, elbows, wrists, hips, knees and ankles go by LSP's names
    (left_/right_ + joint); ``head``: the head's bones (joint a, joint b, radius), which differ between sets."""
    head = _part("head", head)
    return {
        # The seven masks of Iftimie (2017, docs/references.md): head, torso, arms, legs (+ body).
        "seed7": [head, _TORSO] + [_merge(f"{side}_{kind}", _LIMBS[side, kind])
                                   for kind in ("arm", "leg") for side in ("left", "right")],
        # Upper and lower arms and legs separately (+ head, torso, body).
        "limbs": [head, _TORSO] + [p for kind in ("arm", "leg") for side in ("left", "right")
                                   for p in _LIMBS[side, kind]],
    }
