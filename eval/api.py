"""The Python API: load a pose model once, then pose people in numpy images.

    from eval.api import PoseEstimator
    estimator = PoseEstimator()                         # the shipped model; or PoseEstimator("checkpoints/run")
    for person in estimator(image_bgr):                 # uint8 [H, W, 3], BGR as cv2.imread gives (rgb=True: RGB)
        print(person.box, person.joints["left_wrist"])  # (x, y, score) in the image's own px

Without a box, people are found in the image (for a model whose joints are not a person's, keypoint spec ``person``
false, the whole image is posed as one instead) (MediaPipe's BlazePose person detector, eval.blazepose; the main
person, nearest the image centre, first; the whole image if it finds none: ``estimator.detected`` is then False, and
the first look averages the whole image's beliefs at FALLBACK_ZOOMS); with ``box=(x, y, w, h)`` that one person is
posed. Each person is posed from a first crop of its box and then ``refine`` more, each cut where the previous
crop's joints put the person. scripts/predict.py is built on it, and ``evaluate.py --boxes detected`` scores it
(docs/evaluation.md).
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from cpm.checkpoint import resolve_checkpoint
from cpm.errors import UserError
from cpm.joints import VISIBLE
from dataflow.records import center_scale_from_joints
from eval.inference import PosePredictor
from eval.people import box_center_scale, people_to_pose

#: Crops per person after the first: each is cut where the previous crop's joints put the person, with the rule
#: training crops use (dataflow.records.center_scale_from_joints), so a detector's box need not match that rule.
REFINE = 1
#: Zooms whose beliefs are averaged for the first look at a whole image where the detector found nobody: the plain
#: crop and two zoomed out (the person smaller, amid padding), whose averaged maps place a person of unknown size
#: better than the plain crop alone (docs/evaluation.md).
FALLBACK_ZOOMS = (1.0, 0.8, 0.65)


@dataclass
class Person:
    """One posed person.

    Attributes:
        box: (x, y, w, h) in image px: the box given, or the detector's.
        joints: {joint name: (x, y, score)} for every joint of the model's keypoint spec, in its order, inside the
            image.
        part_mask: uint8 [H, W] part labels (0 background, k + 1 for part_names[k]) when asked for, else None.
        body_mask: bool [H, W] the whole body when parts are asked for, else None.
        beliefs: the fused belief maps [S, S, K + 1] of the person's crop (for drawing), or None unless asked for.
    """

    box: tuple
    joints: dict
    part_mask: Optional[np.ndarray] = None
    beliefs: Optional[np.ndarray] = None
    body_mask: Optional[np.ndarray] = None

    def array(self):
        """The joints as float32 [K, 3] (x, y, score) in the spec's order."""
        return np.array(list(self.joints.values()), np.float32).reshape(len(self.joints), 3)


class PoseEstimator:
    """A CPM loaded once for many images.

    Args:
        model: run directory, checkpoint prefix or exported weights.npz; None for the shipped model.
        precision: "fp32" or "bf16" (CPUs with bf16 instructions).
        flip: also average the mirrored crop (twice the work, a point or so of PCK).
        refine: crops per person after the first (REFINE; 0 is fastest): docs/evaluation.md has the measurements.
        predictor: instead of ``model``, an eval.inference.PosePredictor already loaded (evaluate.py's).
        parts_from: where part masks come from: "learned" (the model's part output), "skeleton" (capsules drawn
            around the predicted joints, PosePredictor.drawn_parts) or None for the model's MODEL.PARTS_FROM, which
            ship.py sets to the better of the two on validation (a model without a part output draws the skeleton).
    Attributes:
        spec: the model's cpm.keypoints.KeypointSpec (the joints it predicts).
        parts_from: "learned", "skeleton", or None where the model can give no parts (a keypoint spec without a
            part scheme).
        part_names: names of the part labels (background excluded), or None without parts.
        weights, config: what was loaded.
        detected: after a call without a box, whether people were found (False: the whole image was posed).
    """

    def __init__(self, model=None, precision="fp32", flip=False, refine=REFINE, *, predictor=None, parts_from=None):
        if predictor is None:
            self.weights, self.config = resolve_checkpoint(model)
            predictor = PosePredictor(self.config, self.weights, precision, flip=flip)
        else:  # an already loaded eval.inference.PosePredictor (evaluate.py's)
            self.weights, self.config = predictor.weights, predictor.cfg
        if int(refine) < 0:
            raise UserError(f"refine {refine}: crops after the first cannot be negative")
        self._predictor, self.refine = predictor, int(refine)
        self.spec = predictor.spec
        learned, drawn = predictor.part_names, predictor.drawn_part_names
        asked, parts_from = parts_from, parts_from or self.config.MODEL.PARTS_FROM
        if parts_from not in ("learned", "skeleton"):
            raise UserError(f"parts from {parts_from!r}: expected learned or skeleton")
        if parts_from == "learned" and not learned:
            if asked:
                raise UserError(f"parts from learned: {self.weights} has no learned part output (no part stages "
                                f"nor part head); parts from skeleton draws them around its joints")
            parts_from = "skeleton"
        names = learned if parts_from == "learned" else drawn
        self.parts_from = parts_from if names else None
        self.part_names = list(names[:-1]) if names else None  # the last name is the whole body's
        self.detected = None

    def __call__(self, image, box=None, rgb=False, parts=False, beliefs=False):
        """Pose the people of ``image``.

        Args:
            image: uint8 [H, W, 3], BGR (as OpenCV reads) or RGB with ``rgb=True``; [H, W] greyscale is accepted.
            box: (x, y, w, h) of the one person to pose, or None to find people.
            parts: also return each person's part labels and body (``parts_from`` says whence).
            beliefs: also return each person's fused belief maps.
        Returns:
            list of Person, one per person.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise UserError(f"image: expected uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        image = np.ascontiguousarray(image[:, :, 2::-1] if rgb else image[:, :, :3])
        if parts and not self.part_names:
            raise UserError(f"parts: the keypoint spec of {self.weights} ({self.spec.name}) has no part scheme")
        height, width = image.shape[:2]
        people = []
        for found, center, scale in self._boxes(image, box):
            zooms = FALLBACK_ZOOMS if self.detected is False else (1.0,)
            for _ in range(self.refine):  # a first look, then the crop where its joints say the person is
                joints = self._predictor.locate(image, center, scale, zooms=zooms)
                zooms = (1.0,)
                try:
                    center, scale = center_scale_from_joints(np.c_[joints[:, :2], np.full(len(joints), VISIBLE)])
                except ValueError:  # every joint at one point (a 1 px image): the box's crop stands
                    break
            joints, fused, masks = self._predictor.pose(image, center, scale, self.parts_from if parts else None)
            joints[:, 0] = np.clip(joints[:, 0], 0, width - 1)  # a joint placed in the crop's padding: nearest px
            joints[:, 1] = np.clip(joints[:, 1], 0, height - 1)
            people.append(Person(tuple(float(v) for v in found),
                                 {n: tuple(float(v) for v in j) for n, j in zip(self.spec.names, joints, strict=True)},
                                 masks[0] if masks else None, fused if beliefs else None, masks[1] if masks else None))
        return people

    def _boxes(self, image, box):
        """(box, centre, scale) of each person to pose: the given box, detections, or the whole image (also for a
        model whose joints are not a person's, keypoint spec ``person`` false: the person detector would not find
        them)."""
        if box is None and not self.spec.person:
            box = (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
        if box is not None:
            if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
                raise UserError(f"box {box!r}: expected (x, y, w, h) with positive width and height")
            self.detected = None
            return [(box, *box_center_scale(box))]
        found, self.detected = people_to_pose(image)
        return found
