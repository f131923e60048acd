"""Finding people to pose in an unannotated image: MediaPipe's BlazePose person detector (eval.blazepose), OpenCV's
built-in HOG people detector where its model file is missing, or the whole image."""
import cv2
import numpy as np

from dataflow.records import SCALE_UNIT_PX

# A HOG people window (64 x 128) frames a person about 96 px tall: the box is a third taller than the person.
HOG_PERSON_FRACTION = 0.75
HOG_MIN_SCORE = 0.5  # SVM margin below which detections are dropped
HOG_NMS_IOU = 0.4
HOG_MAX_HEIGHT = 1200  # px: taller images are searched at this height
_HOG = []  # the descriptor, built on first use: loading its SVM once serves every frame of a video


def _hog():
    if not _HOG:
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        _HOG.append(hog)
    return _HOG[0]


def detect_people(image):
    """Boxes [x, y, w, h] of people found by OpenCV's default HOG + linear SVM people detector (no download).

    Returns:
        list of (box float [4], score), best first, after non-maximum suppression.
    """
    hog = _hog()
    scale = 1.0
    h = image.shape[0]
    if h < 2 * 128:  # HOG needs people at least 128 px tall: upscale small images
        scale = 2 * 128 / h
    elif h > HOG_MAX_HEIGHT:  # and its pyramid of a large photo costs seconds and GBs: people stay > 128 px here
        scale = HOG_MAX_HEIGHT / h
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else
                           cv2.INTER_LINEAR)
    boxes, scores = hog.detectMultiScale(image, winStride=(8, 8), padding=(16, 16), scale=1.05)
    return [(box / scale, score) for box, score in suppress(boxes, scores)]


def suppress(boxes, scores):
    """Non-maximum suppression of boxes [N, 4] (x, y, w, h) with scores [N]: (box, score) pairs kept, best first;
    boxes scoring below HOG_MIN_SCORE are dropped."""
    if len(boxes) == 0:
        return []
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep = cv2.dnn.NMSBoxes([list(map(int, b)) for b in boxes], scores.tolist(), HOG_MIN_SCORE, HOG_NMS_IOU)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)  # an empty tuple when nothing passes the score
    order = keep[np.argsort(-scores[keep])]
    return [(np.asarray(boxes[i], dtype=np.float64), float(scores[i])) for i in order]


# BlazePose's person ROI is 2 x 1.25 times the radius of the circle around the body: the person is 0.8 of its side.
BLAZEPOSE_PERSON_FRACTION = 0.8


def find_people(image):
    """(box [x, y, w, h], centre, scale) of each person found in a BGR image, best first: BlazePose's person ROIs,
    or HOG's boxes if the BlazePose model file is missing; [] if none is found."""
    from eval import blazepose  # noqa: PLC0415  (LiteRT's interpreter, loaded when first needed)

    if blazepose.available():
        return [(b, *box_center_scale(b, BLAZEPOSE_PERSON_FRACTION)) for b, _ in blazepose.detect(image)]
    return [(b, *box_center_scale(b, HOG_PERSON_FRACTION)) for b, _ in detect_people(image)]


def people_to_pose(image):
    """What a user's photo without a box is posed as: (list of (box [x, y, w, h], centre, scale), detected). The
    people find_people finds, the main person first: the one whose box centre is nearest the image centre (where a
    photographer puts the subject; docs/evaluation.md compares the rules), the rest by the detector's score; or,
    where it finds none, the whole image as one person (``detected`` False)."""
    found = find_people(image)
    if found:
        middle = np.array([image.shape[1], image.shape[0]], np.float64) / 2
        main = min(range(len(found)), key=lambda k: np.linalg.norm(found[k][1] - middle))  # (box, centre, scale)
        return [found[main]] + found[:main] + found[main + 1:], True
    whole = (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
    return [(whole, *box_center_scale(whole))], False


def box_center_scale(box, person_fraction=1.0):
    """Person centre and scale (PersonRecord units) of a box [x, y, w, h] whose longer side is the person's
    length divided by ``person_fraction`` (1.0 for a tight box)."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2, y + h / 2], np.float32), max(w, h) * person_fraction / SCALE_UNIT_PX
