"""From belief maps to joints in original image coordinates: view fusion, a predictor, the mean-pose baseline.

Test-time augmentation follows the CPM release: each person is cropped at several zooms (and mirrored), the belief
maps of every view are upsampled to crop px, brought into the frame of the plain zoom-1 crop and averaged, and each
joint is the arg-max of the average.
"""
import cv2
import numpy as np

from cpm.joints import UNANNOTATED
from dataflow.geometry import Geometry
from dataflow.transforms import apply_affine, image_mask, invert_affine
from eval.network import open_network


def joints_to_original(crop_joints, affine):
    """Map crop-px joints [K, >=2] back through the inverse of ``affine`` (original -> crop). Returns float64 [K, 2]."""
    return apply_affine(invert_affine(affine), np.asarray(crop_joints, dtype=np.float64)[:, :2])


def unflip_beliefs(beliefs, order):
    """Maps of a mirrored crop [..., H, W, C] mirrored back, with left/right channels swapped by ``order``
    (Geometry.belief_flip_order or part_flip_order)."""
    return beliefs[..., ::-1, :][..., order]


def fuse_views(codec, beliefs, zooms, flips, order, interpolation=cv2.INTER_CUBIC):
    """Average the maps (beliefs, or part probabilities with their ``order``) of several views of one person in the
    frame of the zoom-1, unflipped crop.

    Args:
        codec: BeliefCodec.
        beliefs: list of [H, H, C] maps, one per view.
        zooms: zoom of each view about the crop centre (crop_affine's ``zoom``); flips: whether each was mirrored.
        order: channel relabelling of a mirrored view (Geometry.belief_flip_order, part_flip_order).
        interpolation: cv2 flag for the upsampling to crop px (BeliefCodec.upsample).
    Returns:
        float32 [S, S, C] maps in crop px of the zoom-1 crop.
    """
    if len(beliefs) == 1 and zooms[0] == 1.0:  # the plain view alone (the default): nothing to average
        maps = unflip_beliefs(beliefs[0], order) if flips[0] else beliefs[0]
        return codec.upsample(maps, interpolation).astype(np.float32, copy=False)
    size = codec.input_size
    mid = (size - 1) / 2.0
    total = 0.0
    for maps, zoom, flip in zip(beliefs, zooms, flips, strict=True):
        dense = codec.upsample(unflip_beliefs(maps, order) if flip else maps, interpolation)
        if zoom != 1.0:
            # A view at zoom z is the base crop scaled by z about the centre: scale by 1 / z to come back.
            back = np.array([[1 / zoom, 0, mid * (1 - 1 / zoom)], [0, 1 / zoom, mid * (1 - 1 / zoom)]])
            dense = np.stack([cv2.warpAffine(dense[:, :, c], back, (size, size), flags=cv2.INTER_LINEAR)
                              for c in range(dense.shape[2])], axis=2)
        total = total + dense
    return (total / len(beliefs)).astype(np.float32)


def decode_in_image(codec, fused, valid, base_affine):
    """Joints [K, 3] (x, y, score) in original px from fused crop-px maps [S, S, C].

    The arg-max runs over crop pixels that show the image (``valid`` [S, S] is 1 there), so every prediction lies
    inside the image: a joint cut off by the border lands on the border rather than in the grey padding.
    """
    # -inf, not 0: beliefs can be negative, and a zeroed padding would then win the arg-max.
    joints = codec.decode_dense(np.where(valid[:, :, None] > 0, fused[:, :, :codec.num_joints], -np.inf))
    joints[:, :2] = joints_to_original(joints, base_affine)
    return joints


def decode_parts(fused, valid):
    """Part labels and body mask from crop-px part probabilities [S, S, P + 2] (eval.inference.fuse_views' output).

    Returns:
        (labels uint8 [S, S]: 0 background, k + 1 for part k, the most probable class; body bool [S, S]: body
        probability > 0.5), both 0 / False where the crop does not show the image.
    """
    v = np.asarray(valid) != 0
    labels = np.where(v, fused[:, :, :-1].argmax(axis=2), 0).astype(np.uint8)
    return labels, v & (fused[:, :, -1] > 0.5)


def labels_to_original(labels, base_affine, image_shape):
    """Crop-px labels [S, S] mapped back onto the original image (nearest neighbour): uint8 [H, W]."""
    h, w = image_shape[:2]
    return cv2.warpAffine(np.asarray(labels, np.uint8), np.asarray(base_affine, np.float64), (w, h),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class PosePredictor:
    """A trained CPM that maps people in images to joints in original image px.

    Args:
        cfg: the run's config (cpm.checkpoint.resolve_checkpoint).
        weights: checkpoint prefix or .npz; None initialises the weights at random (for benchmarks).
        precision: "fp32" or "bf16".
        zooms: test-time zooms (the release averages 0.7-1.3); flip: also average the mirrored crops.
        network: instead of weights, a function of (images, centre maps) -> [beliefs, (part probabilities)] that
            runs a model built elsewhere, e.g. a trainer's ``get_predictor`` (the epoch report). Default: the
            network eval.network.open_network opens for ``weights`` (LiteRT or a TensorFlow session).
        geometry: the model's dataflow.geometry.Geometry, when the caller has it already (default: the config's).

    Attributes:
        geometry; spec (its keypoint spec); codec (its belief codec); part_names (None without part stages);
        drawn_part_names (the skeleton's parts, drawn_parts; None where the keypoint spec has no part scheme);
        drawn_codec (the PartCodec on every crop pixel that draws them, or None).
    """

    def __init__(self, cfg, weights=None, precision="fp32", zooms=(1.0,), flip=False, *, network=None,
                 geometry=None):
        self.cfg, self.weights = cfg, weights
        self.geometry = geometry or Geometry.from_config(cfg)
        self.spec, self.codec = self.geometry.spec, self.geometry.beliefs
        self.views = [(z, f) for z in zooms for f in ((False, True) if flip else (False,))]
        self.part_names = self.geometry.part_names
        self.drawn_part_names = self.geometry.drawn_part_names
        self.drawn_codec = self.geometry.part_codec(dense=True, drawn=True)
        self.network = network if network is not None else open_network(cfg, weights, precision, self.geometry)

    def locate(self, image, center, scale, stage=None, zooms=(1.0,)):
        """A first look at one person, for where it is rather than for the answer: joints [K, 3] in original px from
        the final belief maps (or stage ``stage``'s, 1-based) of the plain crop, or of the crops at ``zooms``
        averaged, the network run only as far as they need where it can stop early
        (eval.tf_network.TFNetwork.stage_beliefs; other networks run whole)."""
        stage = self.cfg.MODEL.STAGES if stage is None else min(stage, self.cfg.MODEL.STAGES)
        # decoded as the answer is (on crop px that show the image): a coarser decode on the maps, joints clipped to
        # the image, lost 2 points of validation PCK@0.2 for 4 ms
        views = [(z, False) for z in zooms]
        crops, cmaps, base, valid = self.crop_views(image, center, scale, views)
        stage_beliefs = getattr(self.network, "stage_beliefs", None)
        beliefs = stage_beliefs(stage, crops, cmaps) if stage_beliefs else self.network(crops, cmaps)[0]
        return self.decode(beliefs, base, valid, views)[0]

    def beliefs(self, images, center_maps):
        """Final belief maps of a batch of crops: uint8 [B, S, S, 3], [B, H, H, 1] -> float32 [B, H, H, K + 1]."""
        return self.network(images, center_maps)[0]

    def outputs(self, images, center_maps):
        """(beliefs [B, H, H, K + 1], part probabilities [B, H', H', P + 2] (H' = H for part stages, 2H for a part head)
        or None without learned parts)."""
        out = self.network(images, center_maps)
        return out[0], (out[1] if self.part_names else None)

    def decode_parts(self, view_parts, valid):
        """(labels uint8 [S, S], body bool [S, S]) in base-crop px from the part probabilities of one person's
        views."""
        # bilinear: bicubic's sharper part boundaries lost 0.1 point of validation part IoU
        fused = fuse_views(self.codec, list(view_parts), [z for z, _ in self.views], [f for _, f in self.views],
                           self.geometry.part_flip_order, cv2.INTER_LINEAR)
        return decode_parts(fused, valid)

    def drawn_parts(self, joints, base_affine, valid):
        """The skeleton's parts: capsules drawn around predicted ``joints`` [K, >=2] (original px) as the part targets
        are drawn around annotated ones (dataflow.targets.PartCodec), the person's size being the predicted joints'
        own extent, as a crop made from them takes it (dataflow.records.center_scale_from_joints).

        Returns:
            (labels uint8 [S, S]: 0 background, k + 1 for drawn_part_names[k]; body bool [S, S]: labels > 0) in the
            px of the crop ``base_affine`` makes, 0 / False where ``valid`` [S, S] is 0 (the crop's padding).
        """
        xy = apply_affine(base_affine, np.asarray(joints, np.float64)[:, :2])
        extent = float((xy.max(axis=0) - xy.min(axis=0)).max())
        labels = self.drawn_codec.encode(np.c_[xy, np.ones(len(xy))], max(extent, 1.0))
        labels = np.where(np.asarray(valid) != 0, labels, 0).astype(np.uint8)
        return labels, labels > 0

    def crop_views(self, image, center, scale, views=None):
        """The crops of one person, one per view (of ``views``, (zoom, flip) pairs; default: the predictor's).

        Returns:
            (crops uint8 [V, S, S, 3], centre maps [V, H, H, 1], base (zoom-1) affine [2, 3], valid [S, S] of the
            base crop).
        """
        g = self.geometry
        crops = [g.crop(image, g.affine(center, scale, zoom=z, flip=f)) for z, f in (views or self.views)]
        base = g.affine(center, scale)
        return (np.stack(crops), np.stack([g.center_map()] * len(crops)), base,
                image_mask(image.shape, base, g.input_size))

    def decode(self, view_beliefs, base_affine, valid, views=None):
        """Joints [K, 3] (x, y, score) in original px, and the fused maps [S, S, K + 1] in base-crop px, from the
        beliefs of one person's views (``views`` as crop_views took them)."""
        views = views or self.views
        fused = fuse_views(self.codec, list(view_beliefs), [z for z, _ in views], [f for _, f in views],
                           self.geometry.belief_flip_order)
        return decode_in_image(self.codec, fused, valid, base_affine), fused

    def predict(self, image, center, scale):
        """Joints float32 [K, 3] in original px of the person at ``center`` / ``scale`` (PersonRecord units)."""
        crops, cmaps, base, valid = self.crop_views(image, center, scale)
        return self.decode(self.beliefs(crops, cmaps), base, valid)[0]

    def pose(self, image, center, scale, parts=None):
        """Everything the model says of one person: image uint8 [H, W, 3] BGR, centre and scale in PersonRecord units;
        ``parts`` "learned" (the part stages' output), "skeleton" (drawn_parts) or None (no parts).

        Returns:
            (joints float32 [K, 3] x, y, score in original px; fused belief maps [S, S, K + 1] in base-crop px;
            None, or (part labels uint8 [H, W], 0 background and k + 1 for part k; body bool [H, W]) in original px).
        """
        crops, cmaps, base, valid = self.crop_views(image, center, scale)
        beliefs, part_maps = self.outputs(crops, cmaps)
        joints, fused = self.decode(beliefs, base, valid)
        if parts is None:
            return joints, fused, None
        if parts == "skeleton":  # the drawn body is the drawn parts' union: one warp
            labels = labels_to_original(self.drawn_parts(joints, base, valid)[0], base, image.shape)
            return joints, fused, (labels, labels > 0)
        labels, body = self.decode_parts(part_maps, valid)
        return joints, fused, (labels_to_original(labels, base, image.shape),
                               labels_to_original(body.astype(np.uint8), base, image.shape) > 0)


def mean_crop_pose(records, affines):
    """The average pose of ``records`` in crop px (each through its own evaluation affine), [K, 2].

    Unannotated joints are left out of their joint's mean; people are not flipped.
    """
    k = records[0].joints.shape[0]
    total = np.zeros((k, 2))
    count = np.zeros((k, 1))
    for r, m in zip(records, affines, strict=True):
        ok = (r.joints[:, 2] != UNANNOTATED)[:, None]
        total += np.where(ok, apply_affine(m, r.joints[:, :2]), 0.0)
        count += ok
    return total / np.maximum(count, 1)


def mean_pose_prediction(mean_pose, affines):
    """The mean pose placed in every crop and mapped back to original px: [N, K, 2]."""
    return np.stack([joints_to_original(mean_pose, m) for m in affines])
