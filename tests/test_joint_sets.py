"""The built-in joint sets on real data: an mpii16 and a coco17 model train, evaluate with their standard figures
(PCKh@0.5 over MPII's 14 joints, COCO's keypoint AP) and predict their own named joints; the figures themselves are
checked on hand-built cases."""
import json
import math
import os

import numpy as np
import pytest

from cpm.config import build_config
from cpm.joints import UNANNOTATED, VISIBLE
from cpm.keypoints import COCO17, MPII16
from dataflow.geometry import Geometry
from dataflow.records import PersonRecord
from eval.cocoeval import keypoint_ap
from eval.evaluate import evaluate, standard_metric
from tests.helpers import COCO_FIXTURE, MPII_FIXTURE, run, write_mpii_mat

SMALL = ["--smoke", "--config", "TRAIN.BATCH_SIZE=4", "TRAIN.NUM_WORKERS=0"]


def test_pckh_leaves_pelvis_and_thorax_out_of_its_mean():
    gt = np.zeros((16, 3))
    gt[:, 0], gt[:, 1], gt[:, 2] = np.arange(16) * 10.0, 50.0, VISIBLE
    record = PersonRecord("a.jpg", gt, (75.0, 50.0), 1.0, "mpii", head_size=10.0, joint_set=MPII16)
    pred = gt.copy()
    pred[MPII16.index["pelvis"], 0] += 50  # wrong, but not in the mean
    pred[MPII16.index["thorax"], 0] += 50
    pred[MPII16.index["left_wrist"], 1] += 5.0  # exactly 0.5 x head size: right
    pred[MPII16.index["right_wrist"], 1] += 5.01  # just past: wrong
    report = evaluate(pred[None], [record], Geometry.from_config(build_config("cpu", keypoints=MPII16)))
    assert report["pckh@0.5"] == pytest.approx(13 / 14)
    assert report["per_joint_pckh"]["pelvis"] == 0 and report["per_joint_pckh"]["left_wrist"] == 1
    assert standard_metric(MPII16, [record]) == "pckh@0.5"
    record.head_size = None
    assert standard_metric(MPII16, [record]) == "pck@0.2"  # the JSON conversion has no head boxes


def test_coco_ap_of_perfect_and_of_shifted_predictions():
    gt = np.zeros((17, 3))
    gt[:, 0], gt[:, 1], gt[:, 2] = 100 + 3.0 * np.arange(17), 200.0, VISIBLE
    gt[COCO17.index["left_ear"], 2] = UNANNOTATED
    record = PersonRecord("a.jpg", gt, (124.0, 200.0), 1.0, "coco", joint_set=COCO17)  # area 0.53 x 200^2
    pred = gt.copy()
    pred[:, 2] = 0.9
    assert keypoint_ap(pred[None], [record], COCO17) == pytest.approx({"ap": 1.0, "ap50": 1.0, "ap75": 1.0, "ar": 1.0})
    # every joint 12 px off: OKS = mean over the 16 annotated joints of exp(-d^2 / (2 area (2 sigma)^2))
    pred[:, 0] += 12.0
    area = 0.53 * 200.0 ** 2
    seen = [k for k in range(17) if k != COCO17.index["left_ear"]]
    oks = np.mean([math.exp(-144.0 / (2 * area * (2 * COCO17.oks_sigmas[k]) ** 2)) for k in seen])
    assert 0.5 < oks < 0.95
    # one person, one prediction: AP at threshold t is 1 if OKS >= t, else 0; AP averages t = 0.50, 0.55, ... 0.95
    expected = np.mean([oks >= t for t in np.linspace(0.5, 0.95, 10)])
    assert keypoint_ap(pred[None], [record], COCO17)["ap"] == pytest.approx(expected)
    assert keypoint_ap(np.full_like(pred, np.nan)[None], [record], COCO17)["ap"] == 0.0  # not found


def _trained(logdir, data, says):
    """Train the smallest run on ``data`` (flags) in ``logdir``; its output says ``says``."""
    trained = run("train.py", *data, *SMALL, "--logdir", logdir)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert says in trained.stdout
    return logdir


def _scored(out, *args):
    """evaluate.py's --out-json report for ``args``."""
    scored = run("evaluate.py", *args, "--out-json", out)
    assert scored.returncode == 0, scored.stderr[-2000:]
    with open(out) as f:
        return json.load(f)


@pytest.mark.slow
def test_an_mpii16_model_trains_evaluates_with_pckh_and_predicts_16_named_joints(tmp_path):
    logdir = _trained(str(tmp_path / "mpii"), ["--data", "mpii", "--datadir", MPII_FIXTURE, "--split", "test_mpii"],
                      "joints: mpii16, 16 of them (the joints of mpii, the first training data)")
    with open(os.path.join(logdir, "config.json")) as f:
        assert json.load(f)["config"]["KEYPOINTS"]["joints"] == list(MPII16.names)
    # the official .mat layout has head boxes: PCKh@0.5 over 14 joints
    mat = str(tmp_path / "mat")
    write_mpii_mat(mat)
    report = _scored(str(tmp_path / "report.json"), "--load", logdir, "--data", "mpii", "--datadir", mat, "--split",
                     "trainval")
    assert set(report["per_joint_pckh"]) == set(MPII16.names) and 0 <= report["pckh@0.5"] <= 1
    image = os.path.join(MPII_FIXTURE, "images", "005808361.jpg")
    posed = run("predict.py", "--load", logdir, "--image", image, "--bbox", "800,0,350,900")
    assert posed.returncode == 0, posed.stderr[-2000:]
    line = next(x for x in posed.stdout.splitlines() if x.startswith("{"))
    person = json.loads(line)["people"][0]
    assert [j["name"] for j in person["joints"]] == list(MPII16.names)


@pytest.mark.slow
def test_a_coco17_model_trains_and_its_coco_results_score_with_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data = ["--data", "coco", "--datadir", COCO_FIXTURE, "--split", "test_coco"]
    logdir = _trained(str(tmp_path / "coco"), data, "joints: coco17, 17 of them")
    results = str(tmp_path / "results.json")
    report = _scored(str(tmp_path / "report.json"), "--load", logdir, *data, "--out-coco", results)
    assert {"ap", "ap50", "ap75", "ar"} <= set(report) and 0 <= report["ap"] <= 1
    with open(results) as f:
        dets = json.load(f)
    assert all(len(d["keypoints"]) == 51 and all(v == 2 for v in d["keypoints"][2::3]) for d in dets)  # all 17
    gt = COCO(os.path.join(COCO_FIXTURE, "test_coco.json"))
    ev = COCOeval(gt, gt.loadRes(results), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert 0 <= ev.stats[0] <= 1
