"""COCO's keypoint AP of predictions on any people, through pycocotools' own COCOeval with the keypoint spec's OKS
sigmas: the figure COCO-format data is reported with.

The ground truth is built from the records themselves (one image per distinct file, one annotation per person), so
any data set scores, COCO's own or not: each person's keypoints and visibilities, the annotated joints' box, and its
area, OKS's scale: the person mask's pixel count where the record has a mask (what COCO's own ``area`` counts), else
BOX_AREA_SHARE of its crop box's (our choice for people without a mask, such as LSP's: roughly the share of a square
box that a standing person covers). Only COCO's own data with masks gives the figure COCO's leaderboards report.
"""
import contextlib
import io

import numpy as np

from cpm.joints import UNANNOTATED
from dataflow.records import SCALE_UNIT_PX

#: area / crop-box area of a person without a mask (see the module docstring)
BOX_AREA_SHARE = 0.53


def person_area(record):
    """OKS's area of one person: its mask's pixel count, else BOX_AREA_SHARE of its crop box (SCALE_UNIT_PX x
    scale a side)."""
    if record.mask is not None:
        return float(np.count_nonzero(record.mask.load()))
    return BOX_AREA_SHARE * (SCALE_UNIT_PX * record.scale) ** 2


def _result(image_id, joints):
    """A COCO keypoint result of one person's joints [K, 3] (x, y, score): scored by the joints' mean score."""
    return {"image_id": image_id, "category_id": 1, "score": float(np.mean(joints[:, 2])),
            "keypoints": [float(v) for v in np.c_[joints[:, :2], np.ones(len(joints))].ravel()]}


def keypoint_ap(pred, records, spec, extra=()):
    """COCO keypoint AP of ``pred`` [N, K, 3] (x, y, score in original px) against ``records`` (N people of ``spec``'s
    joints); ``extra``: more predictions, [(image, joints [K, 3])] (people found that match no annotated person:
    false positives, as COCO counts every detection).

    Returns:
        {"ap", "ap50", "ap75", "ar"}: fractions (COCOeval's stats 0, 1, 2 and 5); NaN where no person has an
        annotated joint. A person whose prediction is missing (NaN) is not detected.
    """
    from pycocotools.coco import COCO  # noqa: PLC0415  (a second's import, only where AP is asked for)
    from pycocotools.cocoeval import COCOeval  # noqa: PLC0415

    images, annotations, results = {}, [], []
    for k, (p, r) in enumerate(zip(pred, records, strict=True)):
        image_id = images.setdefault(str(r.image), len(images) + 1)
        seen = r.joints[:, 2] != UNANNOTATED
        if not seen.any():
            continue
        xy = r.joints[seen, :2]
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        annotations.append({"id": k + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                            "keypoints": [float(v) for v in r.joints.ravel()], "num_keypoints": int(seen.sum()),
                            "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])],
                            "area": person_area(r)})
        if np.all(np.isfinite(p)):
            results.append(_result(image_id, p))
    results += [_result(images[str(image)], p) for image, p in extra if str(image) in images and np.all(np.isfinite(p))]
    if not annotations or not results:  # nobody to find, or nobody found
        value = float("nan") if not annotations else 0.0
        return {"ap": value, "ap50": value, "ap75": value, "ar": value}
    gt = COCO()
    gt.dataset = {"images": [{"id": i} for i in images.values()], "annotations": annotations,
                  "categories": [{"id": 1, "name": "person", "keypoints": list(spec.names)}]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(spec.oks_sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [max(float(v), 0.0) for v in ev.stats]  # -1: nothing to score in that range
    return {"ap": stats[0], "ap50": stats[1], "ap75": stats[2], "ar": stats[5]}
