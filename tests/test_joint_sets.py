"""The built-in joint sets on real data: an mpii16 and a coco17 model train, evaluate with their standard figures
(PCKh@0.5 over MPII's 14 joints, COCO's keypoint AP) and predict their own named joints; the figures themselves are
checked on hand-built cases."""
import json
import math
import os

import cv2
import numpy as np
import pytest

from cpm.config import build_config
from cpm.joints import UNANNOTATED, VISIBLE
from cpm.keypoints import COCO17, JHMDB15, LSP14, MPII16
from cpm.model import adapt_joint_channels
from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.geometry import Geometry
from dataflow.lsp import read_lsp
from dataflow.records import PersonRecord
from eval.cocoeval import keypoint_ap
from eval.evaluate import evaluate, standard_metric
from tests.helpers import COCO_FIXTURE, MPII_FIXTURE, SMALL_CPM, run, write_jhmdb_official, write_mpii_mat

SMALL = ["--smoke", "--config", "TRAIN.BATCH_SIZE=4", "TRAIN.NUM_WORKERS=0"]
# the small network (these tests are of joint sets, not of its size), with the part stages the preset and the joint
# set decide
NETWORK = [arg for arg in SMALL_CPM if not arg.startswith("MODEL.PART_STAGES=")]


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
    # a false positive scored above the true person: precision 1/2 at every recall, so AP 0.5
    perfect = gt.copy()
    perfect[:, 2] = 0.5
    stray = perfect.copy()
    stray[:, 0] += 1000.0
    stray[:, 2] = 0.9
    assert keypoint_ap(perfect[None], [record], COCO17, extra=[("a.jpg", stray)])["ap"] == pytest.approx(0.5)


def _trained(logdir, data, says):
    """Train the small network on ``data`` (flags) in ``logdir``; its output says ``says``."""
    trained = run("train.py", *data, *SMALL, "--logdir", logdir, *NETWORK)
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


#: A user's own keypoints: LSP people's legs under names of the user's (their twins still left_/right_)
LEG_NAMES = {"left_hip": "left_hip_joint", "left_knee": "left_knee_joint", "left_ankle": "left_heel",
             "right_hip": "right_hip_joint", "right_knee": "right_knee_joint", "right_ankle": "right_heel"}


def write_leg_file(folder, people=40):
    """A COCO-format keypoint file as an annotation tool exports it: category "legs" with its keypoints and skeleton
    (1-based), the first ``people`` people of the shipped LSP sample, their images beside it."""
    records = read_lsp(SAMPLE_LSP_DIR, "train")[:people]
    os.symlink(os.path.join(SAMPLE_LSP_DIR, "images"), os.path.join(folder, "images"))
    images, annotations = [], []
    for k, r in enumerate(records, 1):
        kps = np.concatenate([r.joints[[LSP14.index[n] for n in LEG_NAMES], :2],
                              np.full((6, 1), VISIBLE)], axis=1)
        lo, hi = kps[:, :2].min(axis=0), kps[:, :2].max(axis=0)
        h, w = cv2.imread(r.image).shape[:2]
        images.append({"id": k, "file_name": os.path.basename(r.image), "height": h, "width": w})
        annotations.append({"id": k, "image_id": k, "category_id": 7, "iscrowd": 0, "num_keypoints": 6,
                            "keypoints": [float(v) for v in kps.ravel()], "area": float(np.prod(hi - lo)),
                            "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]})
    category = {"id": 7, "name": "legs", "keypoints": list(LEG_NAMES.values()),
                "skeleton": [[1, 2], [2, 3], [4, 5], [5, 6], [1, 4]]}
    with open(os.path.join(folder, "legs.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": [category]}, f)


@pytest.mark.slow
def test_a_users_own_keypoints_train_evaluate_predict_and_export_with_their_names(tmp_path):
    folder = str(tmp_path / "legs")
    os.makedirs(folder)
    write_leg_file(folder)
    names = list(LEG_NAMES.values())
    data = ["--data", "coco", "--datadir", folder, "--split", "legs"]
    says = "joints: legs6, 6 of them (the joints of coco, the first training data); the set has no part scheme: no " \
           "part stages"
    logdir = _trained(str(tmp_path / "run"), data, says)
    report = _scored(str(tmp_path / "report.json"), "--load", logdir, *data)
    assert list(report["per_joint"]) == names and 0 <= report["ap"] <= 1 and report["pcp"] is None
    image = os.path.join(SAMPLE_LSP_DIR, "images", "im0001.jpg")
    posed = run("predict.py", "--load", logdir, "--image", image)  # no box: not a person's joints, the image whole
    assert posed.returncode == 0, posed.stderr[-2000:]
    assert "the model's joints (legs6) are not a person's" in posed.stderr
    line = next(x for x in posed.stdout.splitlines() if x.startswith("{"))
    assert [j["name"] for j in json.loads(line)["people"][0]["joints"]] == names
    out = str(tmp_path / "export")
    exported = run("export.py", "--load", logdir, "--out", out)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "legs6: 6 joints" in exported.stdout
    with open(os.path.join(out, "config.json")) as f:
        spec = json.load(f)["config"]["KEYPOINTS"]
    assert spec["joints"] == names and spec["skeleton"][0] == ["left_hip_joint", "left_knee_joint"]
    assert ["left_heel", "right_heel"] in spec["flip_pairs"]


def test_fine_tuning_into_another_set_keeps_the_shared_joints_channels():
    # out layer [1, 1, 2, K + 1] of joints (a, b) + background; the new set (b, c) keeps b and the background
    w = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)  # channel k holds k and 3 + k
    conv = np.arange(2 * 5, dtype=np.float32).reshape(1, 1, 5, 2)  # input: beliefs a, b, bg, then 2 features
    values = {"stage2/out/W:0": w, "stage2/out/b:0": np.array([1.0, 2.0, 3.0], np.float32),
              "stage2/conv1/W:0": conv, "stage1/conv1/W:0": conv, "conv1_1/W:0": np.ones(3, np.float32)}
    new, adapted = adapt_joint_channels(values, ["a", "b"], ["b", "c"])
    assert sorted(adapted) == ["stage2/conv1/W:0", "stage2/out/W:0", "stage2/out/b:0"]
    np.testing.assert_array_equal(new["stage2/out/W:0"][0, 0, :, [0, 2]].T, [[1, 2], [4, 5]])  # b, background
    assert new["stage2/out/b:0"][0] == 2.0 and new["stage2/out/b:0"][1] == 0.0 and new["stage2/out/b:0"][2] == 3.0
    assert abs(new["stage2/out/W:0"][0, 0, :, 1]).max() < 0.1  # c: a fresh output, N(0, 0.01)
    np.testing.assert_array_equal(new["stage2/conv1/W:0"][0, 0, [0, 2, 3, 4]], conv[0, 0, [1, 2, 3, 4]])
    assert new["stage1/conv1/W:0"] is conv and new["conv1_1/W:0"] is values["conv1_1/W:0"]  # no joint channels
    # a joint the new set only names differently (MPII's upper_neck for lsp14's neck) keeps its channel too
    renamed, _ = adapt_joint_channels(values, ["a", "b"], ["b", "c"], aliases={"c": "a"})
    np.testing.assert_array_equal(renamed["stage2/out/W:0"][0, 0, :, 1], w[0, 0, :, 0])
    assert renamed["stage2/out/b:0"][1] == 1.0


@pytest.mark.slow
def test_a_model_fine_tunes_into_another_set(trained_run, tmp_path):
    spec = tmp_path / "legs.json"
    spec.write_text(json.dumps({"name": "legs6", "joints": ["left_hip", "left_knee", "left_ankle", "right_hip",
                                                             "right_knee", "right_ankle"]}))
    logdir = str(tmp_path / "ft")
    tuned = run("train.py", "--load", trained_run, "--joints", str(spec), *SMALL, "--logdir", logdir)
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert f"joints: legs6, 6 of them (--joints {spec} (fine-tuned from the --load'ed model))" in tuned.stdout
    with open(os.path.join(logdir, "log.log")) as f:
        log = f.read()
    assert "(lsp14) into legs6: " in log and "joint layers keep the channels of 6 shared joints" in log


@pytest.mark.slow
def test_a_jhmdb15_model_trains_on_the_official_layout_and_scores_pck(tmp_path):
    root = str(tmp_path / "jhmdb")
    write_jhmdb_official(root)
    data = ["--data", "jhmdb", "--datadir", root, "--split", "all"]
    logdir = _trained(str(tmp_path / "run"), data, "joints: jhmdb15, 15 of them (the joints of jhmdb, the first "
                                                   "training data)")
    report = _scored(str(tmp_path / "report.json"), "--load", logdir, *data)
    assert list(report["per_joint"]) == list(JHMDB15.names) and 0 <= report["pck@0.2"] <= 1
    assert set(report["per_limb"]) == set(JHMDB15.groups)
