"""MediaPipe's BlazePose person detector (models/blazepose/pose_detection.tflite, Apache-2.0, from the mediapipe
0.10.21 wheel), run with LiteRT (ai-edge-litert, TFLite's successor): nothing to download at run time.

The model takes a 224 x 224 letterboxed RGB image in [-1, 1] (prepared as MediaPipe's ImageToTensorCalculator does
with keep_aspect_ratio and BORDER_ZERO: centred, zero padding, bilinear resampling as its OpenCV converter's
warpPerspective) and scores 2254 SSD anchors; each detection has a box
(around the face) and 4 keypoints, of which the first is the middle of the hips and the second lies on the circle
that encloses the whole body. The decoding follows MediaPipe's pose_detection_cpu graph and its anchor, tensor-to-
detection, non-maximum-suppression and detection-to-ROI settings (quoted below), so a detection becomes MediaPipe's
person ROI: a square centred on the hips, 2 x 1.25 times the circle's radius on a side.
"""
import os
import threading

import cv2
import numpy as np

from eval.network import open_interpreter

MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "blazepose",
                     "pose_detection.tflite")
INPUT = 224
# SsdAnchorsCalculatorOptions of pose_detection_cpu.pbtxt
_STRIDES = (8, 16, 32, 32, 32)
_MIN_SCALE, _MAX_SCALE = 0.1484375, 0.75
# The graph's min_score_thresh, which MediaPipe's Pose solution sets from min_detection_confidence (default 0.5;
# lower thresholds measured worse here, docs/evaluation.md)
MIN_SCORE = 0.5
NMS_IOU = 0.3  # NonMaxSuppressionCalculatorOptions.min_suppression_threshold (weighted)
ROI_SCALE = 1.25  # RectTransformationCalculatorOptions.scale_x / scale_y of pose_detection_to_roi
_lock = threading.Lock()
_INTERPRETER = []


def anchors():
    """Anchor centres [2254, 2] in the unit square (fixed_anchor_size: every anchor is 1 x 1): layers of the same
    stride share one feature map, with two anchors (aspect ratio 1 and its interpolated scale) per layer and cell."""
    out, layer = [], 0
    while layer < len(_STRIDES):
        same = [k for k in range(layer, len(_STRIDES)) if _STRIDES[k] == _STRIDES[layer]]
        size = int(np.ceil(INPUT / _STRIDES[layer]))
        per_cell = 2 * len(same)
        ys, xs = np.mgrid[0:size, 0:size]
        centres = np.stack([(xs + 0.5) / size, (ys + 0.5) / size], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        layer = same[-1] + 1
    return np.concatenate(out)


_ANCHORS = anchors()


def _interpreter():
    if not _INTERPRETER:
        _INTERPRETER.append(open_interpreter(MODEL))
    return _INTERPRETER[0]


def available():
    """True if the detector's model file is there."""
    return os.path.isfile(MODEL)


def letterbox(image_bgr):
    """The 224 x 224 RGB input in [-1, 1] and (scale, pad_x, pad_y): input px = image px * scale + pad."""
    h, w = image_bgr.shape[:2]
    scale = INPUT / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    pad_x, pad_y = (INPUT - nw) // 2, (INPUT - nh) // 2
    canvas = np.zeros((INPUT, INPUT, 3), np.float32)
    resized = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized[:, :, ::-1] / 127.5 - 1.0
    return canvas, (scale, pad_x, pad_y)


def decode(raw_boxes, raw_scores, min_score=MIN_SCORE):
    """Detections from the model's outputs [2254, 12] and [2254]: (scores [N], boxes [N, 4] x0, y0, x1, y1 and
    keypoints [N, 4, 2], in input px), best first, after MediaPipe's weighted non-maximum suppression."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -100.0, 100.0)))
    keep = scores >= min_score
    raw, anchor, scores = raw_boxes[keep], _ANCHORS[keep] * INPUT, scores[keep]
    centre, size = raw[:, :2] + anchor, raw[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anchor[:, None]
    order = np.argsort(-scores)
    out = []
    while len(order):
        top = boxes[order[0]]
        lo, hi = np.maximum(top[:2], boxes[order, :2]), np.minimum(top[2:], boxes[order, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        area = np.prod(boxes[order, 2:] - boxes[order, :2], axis=1)
        iou = inter / (np.prod(top[2:] - top[:2]) + area - inter + 1e-9)
        group, order = order[iou > NMS_IOU], order[iou <= NMS_IOU]
        w = scores[group][:, None]
        out.append((scores[group[0]], (boxes[group] * w).sum(0) / w.sum(),
                    (keypoints[group] * w[:, :, None]).sum(0) / w.sum()))
    if not out:
        return np.zeros(0), np.zeros((0, 4)), np.zeros((0, 4, 2))
    return tuple(np.stack(v) for v in zip(*out, strict=True))


def detect(image_bgr, min_score=MIN_SCORE):
    """People in a BGR image: list of (box [x, y, w, h] in image px: the square person ROI MediaPipe poses, score),
    best first."""
    tensor, (scale, pad_x, pad_y) = letterbox(image_bgr)
    with _lock:  # one interpreter per process; its tensors are not thread-safe
        interpreter = _interpreter()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
        interpreter.invoke()
        outputs = {d["name"]: interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()}
    raw_boxes, raw_scores = outputs["Identity"], outputs["Identity_1"][:, 0]
    scores, _, keypoints = decode(raw_boxes, raw_scores, min_score)
    people = []
    for score, kp in zip(scores, keypoints, strict=True):
        hips, edge = (kp[:2] - (pad_x, pad_y)) / scale  # image px
        side = 2 * ROI_SCALE * np.linalg.norm(edge - hips)
        people.append((np.array([hips[0] - side / 2, hips[1] - side / 2, side, side]), float(score)))
    return people
