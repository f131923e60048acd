"""Pictures of poses: skeletons, belief-map overlays and image grids (OpenCV, uint8 BGR)."""
import os

import cv2
import numpy as np

from cpm.errors import UserError
from cpm.files import write_bytes
from cpm.joints import UNANNOTATED

# Right side warm, left side cool, centre line white: mirrored people are easy to spot.
_SIDE_COLORS = {"right": (0, 128, 255), "left": (255, 160, 0), "centre": (255, 255, 255)}


def _side(name):
    return "right" if name.startswith("right_") else "left" if name.startswith("left_") else "centre"


def write_image(path, image):
    """Write ``image`` to ``path`` in the format of its extension, whole or not at all (cpm.files.write_bytes: a
    refused write is one UserError line naming the path and the space left)."""
    ext = os.path.splitext(path)[1]
    try:
        ok, data = cv2.imencode(ext, image)
    except cv2.error:
        ok = False
    if not ok:
        raise UserError(f"cannot write {path}: OpenCV does not write {ext or 'files without an extension'}")
    write_bytes(path, data.tobytes())


def draw_skeleton(image, joints, spec, thickness=2, color=None):
    """Draw bones and joints on a copy of ``image``.

    Args:
        image: uint8 [H, W, 3].
        joints: [K, 2 or 3] px; with a third column, unannotated joints (0) and their bones are skipped and
            occluded joints (1) are drawn hollow.
        spec: the cpm.keypoints.KeypointSpec of the joints (its skeleton and names).
        color: one BGR colour for everything; default colours by body side.
    Returns:
        uint8 [H, W, 3].
    """
    out = image.copy()
    joints = np.asarray(joints, dtype=np.float64)
    vis = joints[:, 2] if joints.shape[1] > 2 else np.full(len(joints), 2.0)
    pts = [tuple(int(round(v)) for v in p) for p in joints[:, :2]]
    for a, b in spec.skeleton:
        if vis[a] != UNANNOTATED and vis[b] != UNANNOTATED:
            c = color or _SIDE_COLORS[_side(spec.names[b])]
            cv2.line(out, pts[a], pts[b], c, thickness, cv2.LINE_AA)
    for i, p in enumerate(pts):
        if vis[i] != UNANNOTATED:
            c = color or _SIDE_COLORS[_side(spec.names[i])]
            cv2.circle(out, p, thickness + 2, c, -1 if vis[i] == 2 else 1, cv2.LINE_AA)
    return out


def belief_overlay(image, beliefs, alpha=0.6):
    """Blend the max over joint channels of ``beliefs`` [h, w, K + 1] (the last, the background, left out) onto
    ``image`` [H, W, 3] as a heat map."""
    heat = np.asarray(beliefs)[:, :, :-1].max(axis=2)
    heat = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted((image * 0.5).astype(np.uint8), 1 - alpha, colored, alpha, 0)


def grid(tiles, columns):
    """Lay equally sized uint8 tiles [H, W, 3] out in rows of ``columns``; missing cells are black."""
    tiles = list(tiles)
    rows = -(-len(tiles) // columns)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (rows * columns - len(tiles))
    return np.vstack([np.hstack(tiles[r * columns:(r + 1) * columns]) for r in range(rows)])


def belief_montage(beliefs, size):
    """The K + 1 belief channels of one crop [H, W, K + 1] as a grid of heat maps, each ``size`` px square."""
    tiles = [cv2.applyColorMap(cv2.resize(np.clip(beliefs[:, :, k] * 255, 0, 255).astype(np.uint8), (size, size),
                                          interpolation=cv2.INTER_NEAREST), cv2.COLORMAP_JET)
             for k in range(beliefs.shape[2])]
    return grid(tiles, columns=5)


def mask_overlay(image, mask, color=(60, 200, 60), alpha=0.4):
    """``image`` uint8 [H, W, 3] tinted with ``color`` where ``mask`` [H, W] is non-zero, with the mask's outline."""
    out = image.copy()
    on = np.asarray(mask) != 0
    out[on] = ((1 - alpha) * out[on] + alpha * np.array(color)).astype(np.uint8)
    contours, _ = cv2.findContours(on.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, 1, cv2.LINE_AA)
    return out


# BGR colours of part labels 1.. (head, torso, then limbs; right warm, left cool where the scheme alternates them).
_PART_COLORS = np.array([(0, 0, 0), (60, 220, 255), (220, 220, 220), (255, 160, 0), (0, 128, 255), (200, 60, 60),
                         (60, 60, 230), (255, 255, 0), (0, 200, 255), (160, 60, 200), (60, 200, 120)], np.uint8)


def part_overlay(image, labels, alpha=0.5):
    """``image`` uint8 [S, S, 3] with part labels [h, w] (0 background, k + 1 part k; resized to the image by
    nearest neighbour) painted in one colour per part."""
    labels = np.asarray(labels, np.uint8)
    if labels.shape[:2] != image.shape[:2]:
        labels = cv2.resize(labels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    colors = _PART_COLORS[np.minimum(labels, len(_PART_COLORS) - 1)]
    on = labels > 0
    out = image.copy()
    out[on] = ((1 - alpha) * out[on] + alpha * colors[on]).astype(np.uint8)
    return out
