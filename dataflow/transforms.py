"""Geometric and photometric transforms of the CPM training recipe.

Geometry is one affine map ``M [2, 3]`` from original image px to crop px, composed in the reference order
(scale normalisation, random scale, rotation, crop around the person centre, flip). The pixels are warped with
``M`` once, and joints go through exactly the same ``M``, so they cannot drift apart; ``invert_affine(M)`` maps
predictions back to the original image. Pixel centres sit at integer coordinates (OpenCV's convention), so the
flip ``x -> size - 1 - x`` is the same as reversing the columns.
"""
from types import SimpleNamespace

import cv2
import numpy as np

from cpm.joints import UNANNOTATED
from dataflow.records import SCALE_UNIT_PX


def crop_affine(center, scale, size, target_dist, zoom=1.0, rotate_deg=0.0, flip=False, shift=(0.0, 0.0)):
    """Affine map from original image px to crop px.

    Args:
        center: [2] person centre in original px; it lands on the crop centre (plus ``shift``).
        scale: person scale (SCALE_UNIT_PX units); the image is resized by ``target_dist / scale * zoom``.
        size: crop side in px.
        target_dist: see DATA.TARGET_DIST.
        zoom: random scale factor.
        rotate_deg: rotation, counter-clockwise as seen on screen, about the person centre.
        flip: mirror the crop horizontally (the caller swaps left/right joint labels).
        shift: [2] px offset of the person centre from the crop centre.
    Returns:
        float64 [2, 3].
    """
    s = target_dist / scale * zoom
    t = np.deg2rad(rotate_deg)
    # y points down, so a counter-clockwise turn on screen is (x, y) -> (x cos + y sin, -x sin + y cos).
    rot = s * np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    mid = (size - 1) / 2.0 + np.asarray(shift, dtype=np.float64)
    m = np.hstack([rot, (mid - rot @ np.asarray(center, dtype=np.float64))[:, None]])
    if flip:
        m = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0.0, 0.0, 1.0]])
    return m


def invert_affine(m):
    """Inverse of a [2, 3] affine map."""
    return cv2.invertAffineTransform(np.asarray(m, dtype=np.float64))


def apply_affine(m, joints):
    """Map joints [..., K, 2 or 3] through ``m``; a visibility column is carried through unchanged."""
    joints = np.asarray(joints, dtype=np.float64)
    xy = joints[..., :2] @ m[:, :2].T + m[:, 2]
    return np.concatenate([xy, joints[..., 2:]], axis=-1)


def transform_joints(m, joints, relabel=None):
    """Joints [K, 3] through ``m``; unannotated ones stay at (0, 0). ``relabel``: None, or when the map mirrors, the
    keypoint spec's flip permutation (left and right swap)."""
    if isinstance(relabel, (bool, np.bool_)):
        raise TypeError("transform_joints: relabel is the spec's flip permutation or None, not a bool")
    out = apply_affine(m, joints)
    out[joints[:, 2] == UNANNOTATED, :2] = 0.0
    if relabel is not None:
        out = out[relabel]
    return out.astype(np.float32)


def warp_image(image, m, size, pad_value=128):
    """Warp an HxWx3 uint8 image with ``m`` into a size x size crop; outside the image is ``pad_value`` grey.

    Bicubic, as the reference release rotates. A strong downscale is done first with area averaging (warpAffine
    alone would alias), then the rest of the map.
    """
    s = np.sqrt(abs(np.linalg.det(m[:, :2])))
    if s < 0.5:
        r = 2 * s  # pre-shrink so the remaining warp scales by about 0.5
        # at least 1 px a side: a 12 x 6000 image shrunk by 0.02 keeps one row (fx/fy would round it to none)
        dsize = (max(1, round(image.shape[1] * r)), max(1, round(image.shape[0] * r)))
        small = cv2.resize(image, dsize, interpolation=cv2.INTER_AREA)
        sx, sy = small.shape[1] / image.shape[1], small.shape[0] / image.shape[0]
        m = m @ np.array([[1.0 / sx, 0.0, 0.0], [0.0, 1.0 / sy, 0.0], [0.0, 0.0, 1.0]])
        image = small
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(pad_value,) * 3)


def warp_mask(mask, m, size):
    """Warp a uint8 [H, W] 0/1 mask with ``m`` into a size x size crop (nearest neighbour: labels stay labels; 0
    outside the image)."""
    return cv2.warpAffine(np.asarray(mask, np.uint8), m, (size, size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def image_mask(shape, m, size):
    """uint8 [size, size]: 1 where the crop pixel made with ``m`` comes from within an image of ``shape``, i.e. its
    source position lies in [0, w - 1] x [0, h - 1]; 0 in the padding. An image so thin that no crop pixel centre
    falls on its pixel centres (1 px high, say) counts the crop pixels within its pixels' area, and failing that
    (an image smaller than one crop pixel) the crop pixel nearest its centre: the mask is never empty.

    Computed exactly by mapping every crop pixel back (warping a ones-image would inherit OpenCV's 1/32 px
    coordinate rounding and admit pixels just outside).
    """
    inv = invert_affine(m)
    px = np.arange(size, dtype=np.float64)
    sx = inv[0, 0] * px[None, :] + inv[0, 1] * px[:, None] + inv[0, 2]  # size x size
    sy = inv[1, 0] * px[None, :] + inv[1, 1] * px[:, None] + inv[1, 2]
    h, w = shape[:2]
    for edge in (0.0, 0.5):
        mask = ((sx >= -edge) & (sx <= w - 1 + edge) & (sy >= -edge) & (sy <= h - 1 + edge)).astype(np.uint8)
        if mask.any():
            return mask
    x, y = np.clip(np.round(apply_affine(m, [[(w - 1) / 2, (h - 1) / 2]])[0]), 0, size - 1).astype(int)
    mask[y, x] = 1
    return mask


def pad_center_scale(center, scale, pads):
    """Centre and scale of a person box padded by ``pads`` = (left, top, right, bottom) fractions of its side.

    The box is the square of side SCALE_UNIT_PX * scale around ``center``; unequal pads move the centre.
    """
    side = SCALE_UNIT_PX * scale
    left, top, right, bottom = (float(p) * side for p in pads)
    new_center = np.asarray(center, dtype=np.float64) + [(right - left) / 2, (bottom - top) / 2]
    new_side = side + max(left + right, top + bottom)
    return new_center.astype(np.float32), new_side / SCALE_UNIT_PX


class Augment:
    """Random augmentation as the AUG.* config group says (cpm/config.py declares every key, its default and unit).

    Args:
        aug: the AUG group of a config, or any object with its keys as attributes.
    """

    #: AUG values that turn every augmentation off; the other keys then have no effect
    OFF = dict(SCALE_MIN=1.0, SCALE_MAX=1.0, ROTATE_MAX=0.0, FLIP_PROB=0.0, SHIFT_MAX=0.0, COLOR_PROB=0.0,
               BBOX_PAD_PROB=0.0, BLUR_PROB=0.0, NOISE_PROB=0.0, JPEG_PROB=0.0, FRAME_CUT_PROB=0.0)

    def __init__(self, aug):
        self.aug = aug

    @classmethod
    def only(cls, **keys):
        """Just the augmentations of ``keys`` (AUG.* names, e.g. ``FLIP_PROB=1.0``): OFF and then ``keys`` over the
        config's defaults."""
        from cpm.config import get_config

        unknown = set(keys) - set(dict(get_config().AUG.items()))
        if unknown:
            raise KeyError(f"not AUG keys: {sorted(unknown)}")
        return cls(SimpleNamespace(**{**dict(get_config().AUG.items()), **cls.OFF, **keys}))

    def sample_geometry(self, rng, center, scale):
        """Draw one geometric augmentation.

        Returns:
            dict(center, scale, zoom, rotate_deg, flip, shift): keyword arguments of crop_affine except size and
            target_dist.
        """
        a = self.aug
        if rng.random() < a.BBOX_PAD_PROB:
            center, scale = pad_center_scale(center, scale, rng.uniform(a.BBOX_PAD_MIN, a.BBOX_PAD_MAX, 4))
        return dict(
            center=center,
            scale=scale,
            zoom=rng.uniform(a.SCALE_MIN, a.SCALE_MAX),
            rotate_deg=rng.uniform(-a.ROTATE_MAX, a.ROTATE_MAX),
            flip=bool(rng.random() < a.FLIP_PROB),
            shift=rng.uniform(-a.SHIFT_MAX, a.SHIFT_MAX, 2),
        )

    def frame_cut(self, rng, joints, image_shape):
        """The part of the image a user's tight photo of the person would keep, with probability FRAME_CUT_PROB.

        Args:
            joints: float [K, 3] in original px, visibility third.
            image_shape: (H, W, ...) of the original image.
        Returns:
            (x0, y0, x1, y1) int px, the annotated joints' box plus a margin drawn from [0, FRAME_CUT_MARGIN] of its
            width and height a side, clipped to the image; None when not drawn or with fewer than two annotated
            joints. No random number is drawn while FRAME_CUT_PROB is 0, so older recipes keep their samples.
        """
        a = self.aug
        if a.FRAME_CUT_PROB <= 0 or rng.random() >= a.FRAME_CUT_PROB:
            return None
        xy = joints[joints[:, 2] != UNANNOTATED, :2]
        if len(xy) < 2:
            return None
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        margin = rng.uniform(0.0, a.FRAME_CUT_MARGIN, 4) * np.tile(hi - lo, 2)
        h, w = image_shape[:2]
        x0, y0 = np.maximum(np.floor(lo - margin[:2]).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(hi + margin[2:]).astype(int), (w, h))
        if x1 - x0 < 2 or y1 - y0 < 2:  # joints outside the image: nothing sensible to keep
            return None
        return int(x0), int(y0), int(x1), int(y1)

    def photometric(self, rng, image):
        """Colour jitter, blur, noise and JPEG artefacts, each with its probability. uint8 HxWx3 in and out."""
        a = self.aug
        if rng.random() < a.COLOR_PROB:
            image = color_jitter(image, rng.uniform(1 - a.COLOR_GAMMA, 1 + a.COLOR_GAMMA),
                                 rng.uniform(1 - a.COLOR_CONTRAST, 1 + a.COLOR_CONTRAST),
                                 rng.uniform(-a.COLOR_BRIGHTNESS, a.COLOR_BRIGHTNESS) * 255)
        if rng.random() < a.BLUR_PROB:
            k = 2 * int(rng.integers(1, a.BLUR_MAX_KERNEL // 2 + 1)) + 1  # odd, 3..max
            image = cv2.GaussianBlur(image, (k, k), 0)
        if rng.random() < a.NOISE_PROB:
            noise = rng.normal(0.0, rng.uniform(0, a.NOISE_STD), image.shape)
            image = np.clip(image + noise, 0, 255).astype(np.uint8)
        if rng.random() < a.JPEG_PROB:
            quality = int(rng.integers(a.JPEG_QUALITY_MIN, a.JPEG_QUALITY_MAX + 1))
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return image


def color_jitter(image, gamma, contrast, brightness):
    """Gamma, then contrast about the mean grey level, then an additive brightness shift. uint8 in and out."""
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.float32)
    x = lut[image]
    x = (x - x.mean()) * contrast + x.mean() + brightness
    return np.clip(x, 0, 255).astype(np.uint8)
