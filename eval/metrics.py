"""Pose metrics, pure numpy. All coordinates in the same pixel frame (original image px for reported numbers).

Per-item results are float arrays holding 1 (correct), 0 (wrong) or NaN (not scored: unannotated ground truth or
no normaliser), so that means over any axis are ``np.nanmean`` and counts are ``np.isfinite(...).sum()``. A missing
prediction (NaN, e.g. for a person the detector did not find) of an annotated joint is wrong, never left out.
"""
import numpy as np

from cpm.joints import UNANNOTATED

PCP_FACTOR = 0.5  # strict PCP: both endpoints within 0.5 x the ground-truth limb length
PCK_ALPHA = 0.2  # PCK@0.2 on LSP: threshold 0.2 x torso size
PCKH_ALPHA = 0.5  # PCKh@0.5 on MPII: threshold 0.5 x head size (head size = 0.6 x head-box diagonal, from the reader)
RADIUS_PX = 25.0  # secondary figure of a blog re-implementation (docs/references.md): within 25 px on 368 px
RADIUS_CROP_PX = 368.0


def _annotated_xy(gt):
    """float64 [N, K, 2] ground-truth positions with NaN where unannotated."""
    gt = np.asarray(gt, dtype=np.float64)
    xy = gt[..., :2].copy()
    xy[gt[..., 2] == UNANNOTATED] = np.nan
    return xy


def _endpoint(xy, joints):
    """Mean position of ``joints`` (a tuple of indices) for every person: [N, 2]; NaN if any is missing."""
    return xy[:, list(joints)].mean(axis=1)


def pcp_correct(pred, gt, limbs, factor=PCP_FACTOR):
    """Strict PCP per person and limb.

    A limb is correct if both predicted endpoints lie within ``factor`` x the ground-truth limb length of their true
    endpoints; a distance exactly on the threshold counts as correct.

    Args:
        pred: [N, K, >=2] predicted x, y.
        gt: [N, K, 3] ground truth with visibility.
        limbs: the keypoint spec's cpm.keypoints.Limb tuple.
    Returns:
        float64 [N, len(limbs)] in {0, 1, NaN}; NaN where an endpoint joint is unannotated.
    """
    pxy = np.asarray(pred, dtype=np.float64)[..., :2]
    gxy = _annotated_xy(gt)
    out = np.full((len(gxy), len(limbs)), np.nan)
    for i, limb in enumerate(limbs):
        ga, gb = _endpoint(gxy, limb.a), _endpoint(gxy, limb.b)
        pa, pb = _endpoint(pxy, limb.a), _endpoint(pxy, limb.b)
        threshold = factor * np.linalg.norm(ga - gb, axis=1)
        ok = (np.linalg.norm(pa - ga, axis=1) <= threshold) & (np.linalg.norm(pb - gb, axis=1) <= threshold)
        scored = np.isfinite(threshold)
        out[scored, i] = ok[scored]
    return out


def torso_size(gt, torso):
    """PCK's normaliser, [N]: the distance between the spec's two ``torso`` joints (LSP: left shoulder to right hip),
    NaN if either is missing; a spec without a torso (None): the longer side of the box around the person's annotated
    joints, NaN with fewer than two."""
    xy = _annotated_xy(gt)
    if torso is None:
        seen = np.isfinite(xy[..., 0])
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(np.where(seen[..., None], xy, np.inf), axis=1), np.nanmax(
                np.where(seen[..., None], xy, -np.inf), axis=1)
        return np.where(seen.sum(axis=1) >= 2, (hi - lo).max(axis=1), np.nan)
    a, b = torso
    return np.linalg.norm(xy[:, a] - xy[:, b], axis=1)


def pck_correct(pred, gt, normaliser, alpha=PCK_ALPHA):
    """PCK per person and joint: correct if the error is at most ``alpha`` x the person's normaliser.

    Args:
        pred: [N, K, >=2]; gt: [N, K, 3]; normaliser: [N] px (torso_size for PCK, head size for PCKh).
    Returns:
        float64 [N, K] in {0, 1, NaN}; NaN for unannotated joints and people without a normaliser.
    """
    gxy = _annotated_xy(gt)
    err = np.linalg.norm(np.asarray(pred, dtype=np.float64)[..., :2] - gxy, axis=2)
    threshold = alpha * np.asarray(normaliser, dtype=np.float64)[:, None]
    out = (err <= threshold).astype(np.float64)  # a missing (NaN) prediction is wrong
    out[np.isnan(gxy[..., 0]) | ~np.isfinite(threshold) | ~(threshold > 0)] = np.nan
    return out


def within_radius(pred_crop, gt_crop, radius):
    """Per person and joint, 1 if the crop-px error is at most ``radius``; NaN for unannotated joints.

    Args:
        pred_crop, gt_crop: [N, K, >=2] and [N, K, 3] in the person's normalised crop px.
    """
    gxy = _annotated_xy(gt_crop)
    err = np.linalg.norm(np.asarray(pred_crop, dtype=np.float64)[..., :2] - gxy, axis=2)
    out = (err <= radius).astype(np.float64)  # a missing (NaN) prediction is wrong
    out[np.isnan(gxy[..., 0])] = np.nan
    return out


def mean_scored(x):
    """Mean over the scored items of a {0, 1, NaN} array; NaN if nothing was scored."""
    finite = np.isfinite(x)
    return float(x[finite].mean()) if finite.any() else float("nan")


def pose_scores(pred, gt, spec):
    """The core report: strict PCP per limb group and mean, PCK@0.2 per joint and mean, and what was scored.

    Args:
        pred: [N, K, >=2]; gt: [N, K, 3], both in original image px.
        spec: the cpm.keypoints.KeypointSpec of the joints (limbs, torso, names).
    Returns:
        dict: "pcp", "per_limb" {group: PCP} (the spec's groups), "pck@0.2", "per_joint" {joint: PCK@0.2},
        "count" {"people", "limbs", "joints"}.
    """
    pcp = pcp_correct(pred, gt, spec.limbs)
    pck = pck_correct(pred, gt, torso_size(gt, spec.torso))
    groups = np.array([limb.group for limb in spec.limbs])
    return {
        "pcp": mean_scored(pcp),
        "per_limb": {g: mean_scored(pcp[:, groups == g]) for g in spec.groups},
        "pck@0.2": mean_scored(pck),
        "per_joint": {name: mean_scored(pck[:, k]) for k, name in enumerate(spec.names)},
        "count": {"people": len(pcp), "limbs": int(np.isfinite(pcp).sum()), "joints": int(np.isfinite(pck).sum())},
    }


def format_report(report, title):
    """A printable table (percentages) of pose_scores' report and, where present, PCKh@0.5 and within-25-px."""
    pct = lambda v: "    -" if v is None or not np.isfinite(v) else f"{100 * v:5.1f}"  # noqa: E731
    c = report["count"]
    lines = [f"{title}: {c['people']} people, {c['limbs']} limbs and {c['joints']} joints scored",
             "  " + "  ".join(f"{g:>9s}" for g in report["per_limb"]) + f"  {'PCP':>7s}  {'PCK@0.2':>7s}",
             "  " + "  ".join(f"{pct(v):>9s}" for v in report["per_limb"].values())
             + f"  {pct(report['pcp']):>7s}  {pct(report['pck@0.2']):>7s}",
             "  PCK@0.2 per joint: " + ", ".join(f"{n} {pct(v).strip()}" for n, v in report["per_joint"].items())]
    extra = [f"{name} {pct(report[key]).strip()}" for key, name in
             (("pckh@0.5", "PCKh@0.5"), ("ap", "AP"), ("ap50", "AP50"), ("ap75", "AP75"), ("ar", "AR"),
              ("within_25px", "within 25 px of a 368 crop")) if key in report]
    if extra:
        lines.append("  " + ", ".join(extra))
    return "\n".join(lines)


def part_counts(pred_labels, pred_body, gt_labels, valid, num_parts):
    """Pixel intersections and unions of one person's parts and body, over the pixels that show the image.

    Args:
        pred_labels, gt_labels: int [H, W] part labels (0 background, k + 1 for part k).
        pred_body: bool [H, W] predicted whole-body mask; the true body is gt_labels > 0.
        valid: [H, W], non-zero where the crop shows the image.
        num_parts: P.
    Returns:
        (intersection, union) int64 [P + 1] each: parts 0..P-1, then the body.
    """
    v = np.asarray(valid) != 0
    pred = np.append(np.asarray(pred_labels)[v], 0)  # a sentinel keeps bincount's length fixed
    gt = np.append(np.asarray(gt_labels)[v], 0)
    n = num_parts + 1
    inter = np.bincount(pred[pred == gt], minlength=n)[1:n]
    union = np.bincount(pred, minlength=n)[1:n] + np.bincount(gt, minlength=n)[1:n] - inter
    body_p, body_g = np.asarray(pred_body)[v], np.asarray(gt_labels)[v] > 0
    return (np.append(inter, (body_p & body_g).sum()).astype(np.int64),
            np.append(union, (body_p | body_g).sum()).astype(np.int64))


def part_iou(intersection, union, names):
    """IoU per part from summed pixel counts (dataset-level IoU: each part's pixels pooled over all people).

    Returns:
        {"part_iou": {name: IoU or NaN if the part never occurs}, "mean_part_iou": mean over the parts that occur
        (the body included)}.
    """
    inter, union = np.asarray(intersection, np.float64), np.asarray(union, np.float64)
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return {"part_iou": {n: float(v) for n, v in zip(names, iou, strict=True)}, "mean_part_iou": mean_scored(iou)}


#: The part flows a report holds, by the prefix of their keys (eval.evaluate.PartScores): the model's learned output
#: (``part_iou``, ``mean_part_iou``, ...) and the parts drawn around its predicted joints (``skeleton_part_iou``, ...)
PART_FLOWS = {"learned": "", "skeleton": "skeleton_"}


def format_part_report(report, flow="learned"):
    """One line of per-part IoU (percentages) and the mean of a part flow of ``report`` (PART_FLOWS)."""
    prefix = PART_FLOWS[flow]
    ious = ", ".join(f"{n} {100 * v:.1f}" for n, v in report[prefix + "part_iou"].items())
    return f"  {'part' if flow == 'learned' else flow} IoU: {ious}; mean {100 * report[prefix + 'mean_part_iou']:.1f}"


def json_safe(obj):
    """``obj`` with every NaN or infinite float replaced by None: strict JSON (Python's json writes NaN and
    Infinity, which other parsers reject). Lists, tuples, dicts and numpy scalars and arrays are walked."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
