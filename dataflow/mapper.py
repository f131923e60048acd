"""From a person record to one CPM training or evaluation sample: the crop (augmented or not), its belief and centre
maps and part targets, and the markers a mapper returns for a record it cannot use. Free of tensorpack, so that
evaluation and prediction need no TensorFlow (dataflow.pipeline builds the training flows on it).
"""
import os

import cv2
import numpy as np

from cpm.errors import BadSample, UserError
from cpm.joints import UNANNOTATED
from dataflow.images import read_image
from dataflow.records import SCALE_UNIT_PX
from dataflow.targets import joint_weights
from dataflow.transforms import Augment, apply_affine, transform_joints, warp_mask

MIN_IMAGE_SIDE = 8  # px: a smaller training image holds no person to learn from (prediction takes any size)
# An annotated joint further outside its image than this share of the image's larger side is an annotation error
# (LSPET has joints a few px outside; its one joint beyond 1 % of the side, im08075's left shoulder, is 61 % out).
MAX_OUTSIDE = 0.25
BAD_SAMPLE = "bad-sample"  # first element of the marker a mapper returns for a record it cannot use
FAILED_SAMPLE = "failed-sample"  # ... and for an unexpected error while mapping (always stops the run)


def check_joints(record, image_shape):
    """Raise BadSample if an annotated joint of ``record`` is NaN or infinite, or lies further outside an image of
    ``image_shape`` than MAX_OUTSIDE of its larger side."""
    joints = record.joints[record.joints[:, 2] != UNANNOTATED, :2]
    if not np.all(np.isfinite(joints)) or not np.all(np.isfinite(record.center)) or not np.isfinite(record.scale):
        raise BadSample(f"{record.image}: NaN or infinite joint, centre or scale in the annotation")
    h, w = image_shape[:2]
    margin = MAX_OUTSIDE * max(h, w)
    if len(joints) and (joints.min() < -margin or np.any(joints.max(axis=0) > np.array([w, h]) + margin)):
        raise BadSample(f"{record.image}: an annotated joint lies far outside the {w}x{h} image")


def is_marker(datapoint):
    """True for the [BAD_SAMPLE | FAILED_SAMPLE, message] a guarded mapper returns instead of a datapoint."""
    return len(datapoint) == 2 and isinstance(datapoint[0], str) and datapoint[0] in (BAD_SAMPLE, FAILED_SAMPLE)


class CropMapper:
    """Picklable map from a record index to a normalised crop, with or without augmentation.

    Args:
        records: list of PersonRecord.
        geometry: dataflow.geometry.Geometry of the model.
        augment: an Augment, or None for the deterministic evaluation crop.
        seed: base seed; each process draws from its own generator seeded with (seed, pid).
        part_codec: None (no part targets), or the geometry's PartCodec of the belief-map cells (training) or of the
            crop pixels (evaluation).
    """

    def __init__(self, records, geometry, *, augment=None, seed=None, part_codec=None):
        self.records = records
        self.geometry = geometry
        self.part_codec = part_codec
        self.augment = augment
        self.seed = seed
        self._rng, self._rng_pid = None, None

    @property
    def rng(self):
        # Worker processes are forked copies: a generator made before the fork would repeat in every worker.
        if self._rng_pid != os.getpid():
            entropy = [os.getpid()] if self.seed is None else [self.seed, os.getpid()]
            self._rng, self._rng_pid = np.random.default_rng(entropy), os.getpid()
        return self._rng

    def view(self, record):
        """Keyword arguments of Geometry.affine for this record: drawn at random when augmenting."""
        if self.augment is None:
            return dict(center=record.center, scale=record.scale)
        return self.augment.sample_geometry(self.rng, record.center, record.scale)

    def crop(self, record, image):
        """Warp one record's image. Returns (crop uint8 [S, S, 3], affine [2, 3], joints [K, 3] and centre [2] in
        crop px)."""
        view = self.view(record)
        m = self.geometry.affine(**view)
        cut = None if self.augment is None else self.augment.frame_cut(self.rng, record.joints, image.shape)
        if cut is None:
            crop = self.geometry.crop(image, m)
        else:  # only the kept part is warped: around it the crop is padding, as around a tight photo
            x0, y0, x1, y1 = cut
            crop = self.geometry.crop(image[y0:y1, x0:x1], m @ np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]]))
        relabel = self.geometry.spec.flip_permutation if view.get("flip", False) else None
        joints = transform_joints(m, record.joints, relabel)
        center = apply_affine(m, view["center"][None])[0]
        if self.augment is not None:
            crop = self.augment.photometric(self.rng, crop)
        return crop, m, joints, center

    def targets(self, joints, center):
        """(beliefs [H, H, K + 1], weights [K + 1], center_map [H, H, 1]) for crop-px joints and centre."""
        return self.geometry.beliefs.encode(joints), joint_weights(joints), self.geometry.center_map(center)

    @staticmethod
    def person_mask(record, image_shape):
        """The record's person mask uint8 [H, W] in original px, checked against the image's shape."""
        full = record.mask.load()
        if full.shape != tuple(image_shape[:2]):
            raise UserError(f"{record.image}: person mask is {full.shape}, image {tuple(image_shape[:2])}")
        return full

    def part_targets(self, record, image_shape, m, joints, use_mask=True):
        """(labels uint8 [N, N] on the part codec's grid, weight float32) of one person in a crop made with ``m``.

        ``joints`` are in crop px, relabelled if the crop is mirrored, so left and right parts follow the flip. A
        person mask (unless not ``use_mask``: targets from the skeleton alone) is warped with the same ``m``, then
        averaged onto the grid's cells.
        """
        pc = self.part_codec
        n = len(pc.grid)
        if not pc.complete(joints):
            return np.zeros((n, n), np.uint8), np.float32(0.0)
        mask = None
        if record.mask is not None and use_mask:
            size = self.geometry.input_size
            mask = warp_mask(self.person_mask(record, image_shape), m, size)
            if n != size:
                mask = cv2.resize(mask.astype(np.float32), (n, n), interpolation=cv2.INTER_AREA) >= 0.5
        person_size = SCALE_UNIT_PX * record.scale * np.sqrt(abs(np.linalg.det(m[:, :2])))
        return pc.encode(joints, person_size, mask), np.float32(1.0)

    def train_datapoint(self, index):
        record = self.records[index]
        image = read_image(record.image)
        if min(image.shape[:2]) < MIN_IMAGE_SIDE:
            raise BadSample(f"{record.image}: {image.shape[1]}x{image.shape[0]} px is too small to train on")
        check_joints(record, image.shape)
        crop, m, joints, center = self.crop(record, image)
        beliefs, weights, cmap = self.targets(joints, center)
        parts = list(self.part_targets(record, image.shape, m, joints)) if self.part_codec else []
        return [crop, beliefs, weights, cmap] + parts

    def __call__(self, index):
        """The training datapoint of record ``index``; for a record it cannot use, [BAD_SAMPLE, message], and for an
        unexpected error [FAILED_SAMPLE, message]: a worker that raised would die and leave the trainer waiting."""
        try:
            return self.train_datapoint(index)
        except BadSample as e:
            return [BAD_SAMPLE, str(e)]
        except Exception as e:  # reported to the trainer, which stops the run with it
            return [FAILED_SAMPLE, f"error mapping {self.records[index].image}: {type(e).__name__}: {e}"]


def make_mapper(records, geometry, aug=None, seed=None):
    """A CropMapper for training (``aug``, the config's AUG group: augmented crops, part targets on the belief-map
    cells) or, without ``aug``, for evaluation (the plain crop, part targets on every crop pixel)."""
    return CropMapper(records, geometry, augment=Augment(aug) if aug is not None else None, seed=seed,
                      part_codec=geometry.part_codec(dense=aug is None))
