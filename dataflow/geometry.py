"""The crop geometry of a model: the one object the data pipeline, the model's shapes, the predictor, evaluation,
TensorBoard's images and export ask for sizes, codecs and crops.

    geometry = Geometry.from_config(cfg)          # built once per model, from its config and keypoint spec
    m = geometry.affine(center, scale)            # original px -> crop px (augmentation: zoom, rotate_deg, ...)
    crop = geometry.crop(image, m)                # uint8 [S, S, 3]
    maps = geometry.beliefs.encode(joints)        # [H, H, K + 1]; geometry.beliefs.decode_dense(...) back

cpm.model cannot import this module (the layering runs cpm <- dataflow): its builders read plain values off it.
"""
import numpy as np

from cpm.config import STRIDE, learned_parts
from cpm.keypoints import spec_of
from dataflow.targets import BeliefCodec, PartCodec, center_map
from dataflow.transforms import crop_affine, warp_image


class Geometry:
    """Input size, stride and map size, the person's place and size in the crop, the belief and part codecs.

    Args:
        spec: cpm.keypoints.KeypointSpec of the model's joints.
        input_size: px, S (DATA.INPUT_SIZE); stride: px per map cell (DATA.STRIDE).
        sigmas: float [K] px of input, the belief sigma of each joint.
        target_dist, center_sigma, pad_value: DATA.* values.
        part_scheme: a scheme of ``spec`` for the part stages, or None without them; part_width: DATA.PART_WIDTH.
        draw_scheme: for a model without part stages, the scheme its skeleton's parts are drawn in (None: none).
        part_stride: px per cell of the learned part maps (the part stages': the belief maps' stride; the part
            head's: half of it).
    """

    def __init__(self, spec, input_size, stride, sigmas, target_dist, center_sigma, pad_value=128, part_scheme=None,
                 part_width=1.0, draw_scheme=None, part_stride=None):
        self.spec = spec
        self.input_size, self.stride = int(input_size), int(stride)
        self.map_size = self.input_size // self.stride
        self.target_dist, self.center_sigma, self.pad_value = target_dist, center_sigma, pad_value
        self.beliefs = BeliefCodec(input_size, stride, sigmas)
        self.part_scheme, self.part_width = part_scheme, part_width
        self.part_stride = int(part_stride or stride)
        #: px of the crop at the centres of the learned part maps' cells (cell g: part_stride * g + (part_stride - 1)
        #: / 2, the belief maps' convention)
        self.part_grid = self.part_stride * np.arange(self.input_size // self.part_stride) + (self.part_stride - 1) / 2
        #: names of the part channels (exclusive parts, then the body), or None without part stages
        self.part_names = spec.part_names(part_scheme) if part_scheme else None
        #: the scheme of the skeleton's parts, capsules drawn around predicted joints as the part targets are drawn
        #: around annotated ones (the part stages' scheme, or draw_scheme), and its part names (body last), or None
        self.draw_scheme = part_scheme or draw_scheme
        self.drawn_part_names = spec.part_names(self.draw_scheme) if self.draw_scheme else None

    @classmethod
    def from_config(cls, cfg):
        d = cfg.DATA
        spec = spec_of(cfg)
        sigmas = d.JOINT_SIGMAS if d.JOINT_SIGMAS is not None else [d.SIGMA * s for s in spec.sigmas]
        scheme = cfg.MODEL.PART_SCHEME if cfg.MODEL.PART_SCHEME in spec.part_schemes else None
        return cls(spec, d.INPUT_SIZE, d.STRIDE, sigmas, d.TARGET_DIST, d.CENTER_SIGMA, d.PAD_VALUE,
                   scheme if learned_parts(cfg) else None, d.PART_WIDTH, draw_scheme=scheme,
                   part_stride=STRIDE // 2 if cfg.MODEL.PART_HEAD else STRIDE)

    @property
    def num_joints(self):
        return self.spec.num_joints

    @property
    def num_parts(self):
        """Exclusive parts of the part scheme (the model adds background and body); 0 without part stages."""
        return len(self.part_names) - 1 if self.part_names else 0

    def part_codec(self, dense, drawn=False):
        """The PartCodec on the learned part maps' cells (training targets) or, if ``dense``, on every crop pixel
        (evaluation), in the part stages' scheme (None without part stages) or, if ``drawn``, the skeleton's."""
        scheme = self.draw_scheme if drawn else self.part_scheme
        if not scheme:
            return None
        grid = np.arange(self.input_size, dtype=np.float64) if dense else self.part_grid
        return PartCodec(self.spec.parts(scheme), grid, self.part_width)

    def affine(self, center, scale, **view):
        """Original px -> crop px of the person at ``center`` / ``scale`` (PersonRecord units): [2, 3].
        ``view``: crop_affine's zoom, rotate_deg, flip, shift."""
        return crop_affine(center, scale, self.input_size, self.target_dist, **view)

    def affines(self, records):
        """Each person's evaluation crop (no zoom, turn or mirror): [N, 2, 3]."""
        return np.array([self.affine(r.center, r.scale) for r in records]).reshape(-1, 2, 3)

    def crop(self, image, m):
        """The crop of ``image`` (uint8 [H, W, 3]) under ``m``: uint8 [S, S, 3], padded grey outside the image."""
        return warp_image(image, m, self.input_size, self.pad_value)

    def center_map(self, center=None):
        """The centre map [H, H, 1] of a person at ``center`` (crop px; default the crop's centre)."""
        if center is None:
            center = np.full(2, (self.input_size - 1) / 2.0)
        return center_map(center, self.input_size, self.stride, self.center_sigma)

    @property
    def belief_flip_order(self):
        """Channel order that relabels a mirrored crop's belief maps (twins swap; the background stays)."""
        return np.append(self.spec.flip_permutation, self.num_joints)

    @property
    def part_flip_order(self):
        """Channel order that relabels a mirrored crop's part maps [background, parts..., body], or None."""
        if not self.part_scheme:
            return None
        perm = np.asarray(self.spec.part_flip_permutation(self.part_scheme))
        return np.concatenate([[0], perm + 1, [len(perm) + 1]])
