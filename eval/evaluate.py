"""Scoring a predictor on a dataset split: predictions, the metric report and its JSON form."""
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from cpm.errors import BadSample
from cpm.files import staged
from cpm.joints import UNANNOTATED, to_coco_keypoints
from dataflow.images import image_id, read_image
from dataflow.mapper import CropMapper, check_joints
from dataflow.records import SCALE_UNIT_PX, map_records
from dataflow.transforms import apply_affine, image_mask, transform_joints, warp_mask
from eval.cocoeval import keypoint_ap
from eval.inference import mean_crop_pose, mean_pose_prediction
from eval.metrics import (
    PART_FLOWS,
    PCKH_ALPHA,
    RADIUS_CROP_PX,
    RADIUS_PX,
    mean_scored,
    part_counts,
    part_iou,
    pck_correct,
    pose_scores,
    torso_size,
    within_radius,
)


def standard_metric(spec, records):
    """The report key a model of ``spec`` is judged by on ``records`` (its best checkpoint): the spec's metric, or
    PCK@0.2 where the data cannot give it (PCKh without head sizes)."""
    if spec.metric == "pckh@0.5" and not all(r.head_size for r in records):
        return "pck@0.2"
    return spec.metric


def progress_bar(total, desc, disable):
    """A progress bar in the look of tensorpack's (the trainer's), from tqdm itself: importing tensorpack would import
    TensorFlow, which a LiteRT evaluation does not need. Refreshed twice a second on a terminal, every minute in a
    log file (TENSORPACK_PROGRESS_REFRESH, seconds, overrides either, as for the trainer's bar)."""
    interval = os.environ.get("TENSORPACK_PROGRESS_REFRESH")
    interval = float(interval) if interval else (0.5 if sys.stderr.isatty() else 60.0)
    return tqdm(total=total, desc=desc, disable=disable, smoothing=0.5, dynamic_ncols=True, ascii=True,
                mininterval=interval,
                bar_format="{l_bar}{bar}|{n_fmt}/{total_fmt}[{elapsed}<{remaining},{rate_noinv_fmt}]")


def read_or_note(image, unreadable):
    """``image`` read (dataflow.images.read_image), or None where it cannot be read and ``unreadable`` (a dict, or None
    to raise BadSample) takes {image: why} instead."""
    try:
        return read_image(image)
    except BadSample as e:
        if unreadable is None:
            raise
        unreadable[str(image)] = e.why(image)
        return None


class PartScores:
    """Pixel counts of part IoU, pooled over people (eval.metrics.part_counts), for each part flow a model has:
    "learned" (its learned part output) and "skeleton" (PosePredictor.drawn_parts: capsules around its predicted
    joints), both against the part targets drawn around the annotated joints in the person's evaluation crop; and,
    for people with a human-drawn person mask (COCO polygons, JHMDB puppet masks), each flow's body against that
    silhouette, apart. ``learned`` False leaves the learned flow out (a caller that does not have its masks)."""

    def __init__(self, predictor, records, learned=True):
        self.predictor = predictor
        self.flows = {}
        if predictor.part_names and learned:
            self.flows["learned"] = predictor.part_names
        if predictor.drawn_part_names:
            self.flows["skeleton"] = predictor.drawn_part_names
        self.mapper = CropMapper(records, predictor.geometry, part_codec=predictor.drawn_codec) if self.flows else None
        self.counts = {f: (np.zeros(len(n), np.int64), np.zeros(len(n), np.int64)) for f, n in self.flows.items()}
        self.silhouette = dict.fromkeys(self.flows, (0, 0))  # flow: (intersection, union) of body and person mask
        self.people = self.silhouette_people = 0

    def add(self, record, image_shape, joints, stages=None, m=None, valid=None):
        """Count one person: ``joints`` [K, >=2] predicted in original px (NaN: a miss, every part background),
        ``stages`` the learned (labels, body) in the evaluation crop's px, if any; ``m`` and ``valid``, the
        evaluation crop's affine and shown pixels where the caller has them (PosePredictor.crop_views). The part
        targets are drawn from the skeleton alone (a person mask would shape them: it is scored apart); people
        without every part's joints annotated are left out of part IoU (the target's place is unknown), not of the
        silhouette's."""
        if not self.flows:
            return
        size = self.predictor.geometry.input_size
        m = self.predictor.geometry.affine(record.center, record.scale) if m is None else m
        target, weight = self.mapper.part_targets(record, image_shape, m, transform_joints(m, record.joints),
                                                  use_mask=False)
        silhouette = None if record.mask is None else warp_mask(self.mapper.person_mask(record, image_shape), m,
                                                                size) > 0
        if weight == 0 and silhouette is None:
            return
        valid = (image_mask(image_shape, m, size) if valid is None else np.asarray(valid)) != 0
        missed = not np.isfinite(joints).all()
        nothing = (np.zeros((size, size), np.uint8), np.zeros((size, size), bool))
        for flow, names in self.flows.items():
            labels, body = nothing if missed else stages if flow == "learned" else \
                self.predictor.drawn_parts(joints, m, valid)
            if weight > 0:
                i, u = part_counts(labels, body, target, valid, len(names) - 1)
                self.counts[flow] = (self.counts[flow][0] + i, self.counts[flow][1] + u)
            if silhouette is not None:
                i, u = self.silhouette[flow]
                self.silhouette[flow] = (i + int((body & silhouette & valid).sum()),
                                         u + int(((body | silhouette) & valid).sum()))
        self.people += weight > 0
        self.silhouette_people += silhouette is not None

    def report(self):
        """{"part_iou", "mean_part_iou"} of the learned flow, {"skeleton_part_iou", "skeleton_mean_part_iou"} of the
        skeleton (eval.metrics.part_iou), "part_people"; where people have person masks, "silhouette_body_iou",
        "skeleton_silhouette_body_iou" and "silhouette_people"; {} for a model with neither flow."""
        out = {}
        for flow, names in self.flows.items():
            prefix = PART_FLOWS[flow]
            out.update({prefix + k: v for k, v in part_iou(*self.counts[flow], names).items()})
            if self.silhouette_people:
                i, u = self.silhouette[flow]
                out[f"{prefix}silhouette_body_iou"] = i / u if u else float("nan")
        if self.silhouette_people:
            out["silhouette_people"] = self.silhouette_people
        return out | ({"part_people": int(self.people)} if self.flows else {})


def predict_records(predictor, records, batch_people=8, progress=True, unreadable=None):
    """Joints of every record's person, in original px, and the part IoU counts (PartScores) of the same crops. The
    one prediction path of evaluate.py, ship.py and the epoch report. Every person is scored: unusable joints raise
    BadSample naming the file, and so does an unreadable image unless ``unreadable`` (a dict) is given, which then
    takes {image: why} and the person's joints are NaN (wrong to every metric; left out of part IoU, which counts
    pixels of images it can read).

    Returns:
        (pred float32 [N, K, 3], seconds taken, PartScores).
    """
    pred = np.zeros((len(records), predictor.spec.num_joints, 3), np.float32)
    parts = PartScores(predictor, records)
    start = time.perf_counter()
    with progress_bar(len(records), "people", not progress) as bar:
        for first in range(0, len(records), batch_people):
            chunk = []  # (index, record, image) of the readable people of this batch
            for i, r in enumerate(records[first:first + batch_people], first):
                image = read_or_note(r.image, unreadable)
                if image is None:
                    pred[i] = np.nan
                    continue
                check_joints(r, image.shape)
                chunk.append((i, r, image))
            bar.update(min(batch_people, len(records) - first))
            if not chunk:
                continue
            views = [predictor.crop_views(im, r.center, r.scale) for _, r, im in chunk]
            beliefs, part_maps = predictor.outputs(np.concatenate([v[0] for v in views]),
                                                   np.concatenate([v[1] for v in views]))
            per = len(views[0][0])
            for k, ((i, r, image), (_, _, base, valid)) in enumerate(zip(chunk, views, strict=True)):
                pred[i] = predictor.decode(beliefs[k * per:(k + 1) * per], base, valid)[0]
                stages = None if part_maps is None else predictor.decode_parts(part_maps[k * per:(k + 1) * per],
                                                                               valid)
                parts.add(r, image.shape, pred[i], stages, base, valid)
    return pred, time.perf_counter() - start, parts


#: A detected person matches an annotated one if its predicted joints lie, on average over the annotated joints,
#: within this share of the annotated person's size (SCALE_UNIT_PX * scale, about its height) of the truth.
MATCH_MAX_DISTANCE = 0.5


def match_people(predicted, annotated, max_distance=MATCH_MAX_DISTANCE):
    """Pair the people found in one image with its annotated people.

    The cost of a pair is the mean distance from the annotated person's annotated joints to the predicted ones,
    divided by the annotated person's size (SCALE_UNIT_PX * scale). The pairs are the assignment of least total cost
    (scipy's Hungarian solver), less those costing ``max_distance`` or more.

    Args:
        predicted: [P, K, >=2] joints of the people found, original px.
        annotated: the image's PersonRecords.
    Returns:
        list of (annotated index, predicted index), in annotated order.
    """
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415

    if not np.size(predicted) or not annotated:
        return []
    predicted = np.asarray(predicted, np.float64).reshape(-1, len(annotated[0].joints), np.shape(predicted)[-1])
    cost = np.full((len(annotated), len(predicted)), np.inf)
    for a, r in enumerate(annotated):
        seen = r.joints[:, 2] != UNANNOTATED
        if seen.any():
            err = np.linalg.norm(predicted[:, seen, :2] - r.joints[None, seen, :2], axis=2).mean(axis=1)
            cost[a] = err / (SCALE_UNIT_PX * r.scale)
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
    return [(int(a), int(p)) for a, p in zip(rows, cols, strict=True) if cost[a, p] < max_distance]


def predict_detected(estimator, records, progress=True, unreadable=None, parts=None):
    """Joints of every record's person as a user without a box gets them: the people eval.api.PoseEstimator finds
    in each image (BlazePose's detector; the whole image where it finds none), matched to the annotated people of
    that image (match_people). An annotated person without a match is a miss: NaN joints, which every metric counts
    wrong; so is the person of an image that cannot be read, where ``unreadable`` (a dict) is given (predict_records).
    ``parts`` (a PartScores) counts each annotated person's parts in its evaluation crop: a matched person's
    (``estimator.parts_from`` "learned": the part stages' masks, warped into the crop; and the skeleton's, drawn
    around the joints found), a missed person's as all background.

    Returns:
        (pred float32 [N, K, 3] with NaN rows for misses, seconds taken, {"people": N, "matched", "images",
        "images_without_detection", "found": people found in all images}, the unmatched people found: [(image,
        joints [K, 3])], false positives to COCO's AP).
    """
    k = estimator.spec.num_joints
    pred = np.full((len(records), k, 3), np.nan, np.float32)
    by_image = {}
    for i, r in enumerate(records):
        by_image.setdefault(r.image, []).append(i)
    info = {"people": len(records), "matched": 0, "images": len(by_image), "images_without_detection": 0, "found": 0}
    start, unmatched = time.perf_counter(), []
    with progress_bar(len(by_image), "images", not progress) as bar:
        for image, indices in by_image.items():
            pixels = read_or_note(image, unreadable)
            if pixels is None:
                bar.update(1)
                continue
            people = estimator(pixels, parts=parts is not None and estimator.parts_from == "learned")
            found = np.array([p.array() for p in people], np.float32).reshape(-1, k, 3)
            info["found"] += len(found)
            info["images_without_detection"] += not estimator.detected
            pairs = match_people(found, [records[i] for i in indices])
            for a, p in pairs:
                pred[indices[a]] = found[p]
                info["matched"] += 1
            if parts is not None and parts.flows:
                match = dict(pairs)
                for a, i in enumerate(indices):
                    person = people[match[a]] if a in match else None
                    parts.add(records[i], pixels.shape, pred[i], _in_crop(person, records[i], parts.predictor.geometry))
            used = {p for _, p in pairs}
            unmatched += [(image, found[p]) for p in range(len(found)) if p not in used]
            bar.update(1)
    return pred, time.perf_counter() - start, info, unmatched


def _in_crop(person, record, geometry):
    """A found person's learned (part labels, body) in the evaluation crop of ``record``, or None."""
    if person is None or person.part_mask is None:
        return None
    m = geometry.affine(record.center, record.scale)
    return (warp_mask(person.part_mask, m, geometry.input_size),
            warp_mask(person.body_mask, m, geometry.input_size) > 0)


def format_match(info):
    """One line on how the people were found (predict_detected's info)."""
    return (f"detected people: {info['matched']} of {info['people']} annotated matched "
            f"({100 * info['matched'] / max(1, info['people']):.1f} %; the rest scored wrong), "
            f"{info['found']} found in {info['images']} images, {info['images_without_detection']} images without a "
            f"detection (posed whole)")


def evaluate(pred, records, geometry, extra=()):
    """The full report of ``pred`` [N, K, >=2] (original px) against ``records``, for a model of ``geometry``
    (dataflow.geometry.Geometry: the keypoint spec's metrics, its crops for within-25-px); ``extra``: people found
    that match no annotated one, false positives to AP (eval.cocoeval.keypoint_ap).

    Returns:
        eval.metrics.pose_scores' report plus "pckh@0.5" (mean over the spec's joints less its pckh_exclude) and
        "per_joint_pckh" (every joint), both None unless every record has a head size; "ap", "ap50", "ap75", "ar"
        (eval.cocoeval.keypoint_ap) for a spec whose metric is AP; and "within_25px" (share of joints within 25 px
        of the truth on a 368 px normalised crop, scaled to the input size).
    """
    gt = np.stack([r.joints for r in records])
    spec, input_size = geometry.spec, geometry.input_size
    report = pose_scores(pred, gt, spec)
    report["pckh@0.5"] = report["per_joint_pckh"] = None
    if all(r.head_size for r in records):
        pckh = pck_correct(pred, gt, np.array([r.head_size for r in records]), PCKH_ALPHA)
        kept = [k for k in range(spec.num_joints) if k not in spec.pckh_exclude]  # MPII's mean leaves out 2 joints
        report["pckh@0.5"] = mean_scored(pckh[:, kept])
        report["per_joint_pckh"] = {name: mean_scored(pckh[:, k]) for k, name in enumerate(spec.names)}
    if spec.metric == "ap":
        report.update(keypoint_ap(pred, records, spec, extra=extra))
    affines = geometry.affines(records)
    pred_crop = np.stack([apply_affine(m, p[:, :2]) for m, p in zip(affines, pred, strict=True)])
    gt_crop = np.stack([apply_affine(m, g) for m, g in zip(affines, gt, strict=True)])
    report["within_25px"] = mean_scored(within_radius(pred_crop, gt_crop, RADIUS_PX * input_size / RADIUS_CROP_PX))
    return report


@dataclass
class Evaluation:
    """One scoring of a model on a list of people (``score``).

    Attributes:
        pred: float32 [N, K, 3] predicted joints (x, y, score) in original px, in record order; NaN rows for annotated
            people the detected flow found no match for.
        report: ``evaluate``'s report; PartScores.report's part IoU ("part_iou", "mean_part_iou" with part stages;
            "skeleton_part_iou", "skeleton_mean_part_iou" where the keypoint spec has a part scheme; "part_people":
            people with every part's joints annotated); with detected boxes "match" (predict_detected's info); with
            carry_on "unreadable".
        seconds: time spent predicting.
        images: distinct images.
    """
    pred: np.ndarray
    report: dict
    seconds: float
    images: int

    @property
    def people(self):
        return len(self.pred)

    @property
    def pck(self):
        """Mean PCK@0.2 (torso), a fraction."""
        return self.report["pck@0.2"]

    @property
    def pcp(self):
        """Mean strict PCP, a fraction."""
        return self.report["pcp"]


def score(predictor, records, batch_people=8, estimator=None, progress=True, carry_on=False):
    """Score ``predictor`` (an eval.inference.PosePredictor) on ``records``: the one scoring entry point of
    evaluate.py, ship.py and the epoch report.

    Args:
        estimator: an eval.api.PoseEstimator over the same predictor to find the people as predict.py does
            (predict_detected; parts scored in each annotated person's crop, a miss as all background); None crops
            every person at its annotated joints (predict_records).
        carry_on: score the people of an image that cannot be read as wrong, as a miss is, and name the image in the
            report's "unreadable" ({image: why}); False (the epoch report, which compares epochs on the same people)
            stops with BadSample naming it.
    Returns:
        Evaluation.
    """
    match, unmatched = None, ()
    unreadable = {} if carry_on else None
    records = map_records(records, predictor.geometry.spec)
    if estimator is not None:
        parts = PartScores(predictor, records, learned=estimator.parts_from == "learned")
        pred, seconds, match, unmatched = predict_detected(estimator, records, progress, unreadable, parts)
    else:
        pred, seconds, parts = predict_records(predictor, records, batch_people, progress, unreadable)
    # the people found that match nobody count against AP, as COCO counts them
    report = evaluate(pred, records, predictor.geometry, extra=unmatched)
    if carry_on:
        report["unreadable"] = unreadable
    if match is not None:
        report["match"] = match
    report.update(parts.report())
    return Evaluation(pred, report, seconds, len({r.image for r in records}))


def baseline_report(train_records, val_records, geometry):
    """The mean-pose baseline: the training people's average pose (in the crop px of ``geometry``) placed in each
    validation person's crop and scored with eval.metrics.pose_scores."""
    pred = mean_pose_prediction(mean_crop_pose(train_records, geometry.affines(train_records)),
                                geometry.affines(val_records))
    return pose_scores(pred, np.stack([r.joints for r in val_records]), geometry.spec)


def predictions_json(pred, records, spec):
    """``--save-predictions`` content: joints named as the model's (``spec``), in original px, person index per
    image."""
    seen = {}
    out = []
    for p, r in zip(pred, records, strict=True):
        name = os.path.basename(str(r.image))
        person = seen.get(r.image, 0)
        seen[r.image] = person + 1
        out.append({"image": name, "person": person, "joints": [[float(x), float(y), float(s)] for x, y, s in p]})
    return {"joint_names": list(spec.names), "predictions": out}


def coco_results(pred, records, spec):
    """COCO keypoint results of ``pred`` [N, K, 3] (original px, score) of a model of ``spec``: one {"image_id",
    "category_id": 1, "keypoints": 17 x [x, y, v], "score"} per person, the format pycocotools' ``COCO.loadRes`` and
    COCOeval read (cpm.joints.to_coco_keypoints).

    The image id is the number in the image's file name (COCO's 000000196141.jpg is 196141, LSP's im0801.jpg 801);
    names without one are numbered in order of appearance from 1. The score is the mean of the joints' scores.
    """
    return [{"image_id": image_id(r.image, i), "category_id": 1, "keypoints": to_coco_keypoints(p, spec),
             "score": float(np.mean(p[:, 2]))} for i, (p, r) in enumerate(zip(pred, records, strict=True))]


def pck_curve(pred, records, thresholds, spec):
    """PCK against the normalised threshold per joint, mirror twins pooled (named without their left_ / right_):
    {group: [len(thresholds)]}."""
    gt = np.stack([r.joints for r in records])
    size = torso_size(gt, spec.torso)
    groups = {}
    for k, name in enumerate(spec.names):
        twin = int(spec.flip_permutation[k])
        if twin >= k:
            group = name.split("_", 1)[1] if twin != k and "_" in name else name
            groups[group] = sorted({k, twin})
    return {group: [mean_scored(pck_correct(pred, gt, size, a)[:, idx]) for a in thresholds]
            for group, idx in groups.items()}


def write_plots(pred, records, report, out_dir, spec):
    """PCK-vs-threshold curves per joint group and per-limb PCP bars as PNGs in ``out_dir``. Returns the paths."""
    import matplotlib  # noqa: PLC0415  (imported here: only --plots needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    os.makedirs(out_dir, exist_ok=True)
    thresholds = np.linspace(0, 0.5, 26)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for group, values in pck_curve(pred, records, thresholds, spec).items():
        ax.plot(thresholds, 100 * np.array(values), label=group)
    ax.set(xlabel="threshold / torso size", ylabel="PCK (%)", ylim=(0, 100), title="PCK by joint group")
    ax.grid(alpha=0.3)
    ax.legend()
    curve = os.path.join(out_dir, "pck_curve.png")
    with staged(curve) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    limbs = list(report["per_limb"])
    ax.bar(limbs + ["mean"], [100 * report["per_limb"][g] for g in limbs] + [100 * report["pcp"]])
    ax.set(ylabel="strict PCP (%)", ylim=(0, 100), title="PCP per limb")
    ax.tick_params(axis="x", rotation=30)
    bars = os.path.join(out_dir, "pcp_bars.png")
    with staged(bars) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [curve, bars]
