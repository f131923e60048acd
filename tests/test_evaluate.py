"""evaluate.py, predict.py and export.py on a smoke-trained model, and the evaluation maths on hand-built cases."""
import json
import os
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest

from cpm.checkpoint import lite_model, resolve_checkpoint
from cpm.config import build_config
from cpm.errors import UserError
from cpm.joints import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, UNANNOTATED, VISIBLE
from cpm.keypoints import LSP14
from dataflow.geometry import Geometry
from dataflow.lsp import read_lsp
from dataflow.records import PersonRecord
from eval.evaluate import evaluate, match_people, predictions_json
from eval.inference import PosePredictor, fuse_views
from eval.metrics import within_radius
from eval.network import LiteNetwork
from eval.people import box_center_scale, suppress
from eval.tf_network import TFNetwork
from tests.helpers import run, stick_person


@pytest.mark.slow
def test_evaluate_writes_the_documented_json_predictions_and_plots(trained_run, small_lsp, tmp_path):
    proc = run("evaluate.py", "--load", trained_run, "--data", "lsp", "--datadir", small_lsp, "--split", "all",
               "--out-json", str(tmp_path / "r.json"), "--out-plots", str(tmp_path / "plots"),
               "--out-predictions", str(tmp_path / "p.json"), "--flip", "--scales", "0.8,1.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "12 people, 120 limbs and 168 joints scored" in proc.stdout and "12 images, 12 people in" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert {"pcp", "pck@0.2", "per_joint", "per_limb", "count", "pckh@0.5", "within_25px", "flip", "scales"} <= set(
        report)
    assert report["count"] == {"people": 12, "limbs": 120, "joints": 168}
    assert set(report["per_joint"]) == set(JOINT_NAMES) and report["pckh@0.5"] is None  # LSP has no head boxes
    assert report["flip"] is True and report["scales"] == [0.8, 1.0] and report["images_per_s"] > 0
    assert 0 <= report["pcp"] <= 1 and report["pck@0.2"] == pytest.approx(np.mean(list(report["per_joint"].values())))
    # the smoke run has part stages: IoU per part against the skeleton-derived targets of all 12 people
    assert list(report["part_iou"]) == list(LSP14.part_names("seed7")) and report["part_people"] == 12
    finite = [v for v in report["part_iou"].values() if np.isfinite(v)]
    assert all(0 <= v <= 1 for v in finite) and report["mean_part_iou"] == pytest.approx(np.mean(finite))
    assert "part IoU: head" in proc.stdout
    preds = json.loads((tmp_path / "p.json").read_text())
    assert preds["joint_names"] == list(JOINT_NAMES) and len(preds["predictions"]) == 12
    first = preds["predictions"][0]
    assert first["image"] == "im0001.jpg" and first["person"] == 0 and np.array(first["joints"]).shape == (14, 3)
    for name in ("pck_curve.png", "pcp_bars.png"):
        image = cv2.imread(str(tmp_path / "plots" / name))
        assert image is not None and image.shape[0] > 200


@pytest.mark.slow
def test_predict_writes_joints_inside_the_image(trained_run, tmp_path):
    image_path = os.path.join(os.path.dirname(__file__), "..", "dataflow", "sample", "lsp", "images", "im0005.jpg")
    h, w = cv2.imread(image_path).shape[:2]
    proc = run("predict.py", "--load", trained_run, "--image", image_path, "--out-json", str(tmp_path / "j.json"),
               "--out-image", str(tmp_path / "o.png"), "--bbox", f"10,5,{w - 20},{h - 10}",
               "--part-masks", str(tmp_path / "masks"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "j.json").read_text())
    assert result["part_names"] == list(LSP14.part_names("seed7")[:-1])
    labels = cv2.imread(result["people"][0]["part_mask"], cv2.IMREAD_UNCHANGED)
    assert labels.shape == (h, w) and labels.dtype == np.uint8 and labels.max() <= len(result["part_names"])
    assert result["image"] == image_path and len(result["people"]) == 1
    person0 = result["people"][0]
    assert person0["bbox"] == [10.0, 5.0, w - 20.0, h - 10.0]
    assert [j["name"] for j in person0["joints"]] == list(JOINT_NAMES)
    assert all(0 <= j["x"] < w and 0 <= j["y"] < h for j in person0["joints"])
    assert cv2.imread(str(tmp_path / "o.png")).shape == (h, w, 3)


@pytest.mark.slow
def test_predict_on_a_folder_writes_json_lines(trained_run, small_lsp, tmp_path):
    proc = run("predict.py", "--load", trained_run, "--image", os.path.join(small_lsp, "images"),
               "--out-json", str(tmp_path / "j.jsonl"), "--out-image", str(tmp_path / "drawn"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (tmp_path / "j.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(len(json.loads(line)["people"]) >= 1 for line in lines)
    assert len(os.listdir(tmp_path / "drawn")) == 12


@pytest.mark.parametrize("args, message", [
    (["--image", "NOT_AN_IMAGE"], "error: NOT_AN_IMAGE: not a decodable image"),
    (["--image", "/nonexistent.jpg"], "error: --image /nonexistent.jpg: no such file or folder"),
    (["--image", "x.jpg", "--bbox", "1,2,3"], "error: --bbox '1,2,3': expected x,y,w,h"),
])
@pytest.mark.slow
def test_predict_bad_input_is_one_line(trained_run, tmp_path, args, message):
    args = [str(tmp_path / "junk.jpg") if a == "NOT_AN_IMAGE" else a for a in args]
    (tmp_path / "junk.jpg").write_text("this is not an image")
    proc = run("predict.py", "--load", trained_run, *args)
    message = message.replace("NOT_AN_IMAGE", str(tmp_path / "junk.jpg"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(message)


@pytest.mark.slow
def test_load_errors_are_one_line(tmp_path):
    proc = run("evaluate.py", "--load", str(tmp_path / "nothing"), "--split", "all")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --load")
    with pytest.raises(UserError, match="holds no usable checkpoint"):
        resolve_checkpoint(str(tmp_path))


@pytest.mark.slow
def test_flip_averaging_keeps_a_mirrored_input_mirrored(trained_run):
    weights, cfg = resolve_checkpoint(trained_run)
    predictor = PosePredictor(cfg, weights, flip=True)
    record = read_lsp(os.path.join(os.path.dirname(__file__), "..", "dataflow", "sample", "lsp"), "train")[3]
    image = cv2.imread(record.image)
    w = image.shape[1]
    a = predictor.predict(image, record.center, record.scale)
    mirrored_center = np.array([w - 1 - record.center[0], record.center[1]], np.float32)
    b = predictor.predict(image[:, ::-1].copy(), mirrored_center, record.scale)
    li, ri = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    # The mirrored image's left wrist is the original's right wrist, mirrored.
    expected = a[LSP14.flip_permutation].copy()
    expected[:, 0] = w - 1 - expected[:, 0]
    err = np.abs(b[:, :2] - expected[:, :2])
    assert np.median(err) <= 0.5 and (err <= 1.5).mean() >= 0.9, err
    np.testing.assert_allclose(b[:, 2], expected[:, 2], atol=0.02)
    assert b[li, 0] == pytest.approx(w - 1 - a[ri, 0], abs=1.5)


@pytest.mark.slow
def test_exported_model_matches_the_predictor_without_tensorpack(trained_run, tmp_path):
    out = tmp_path / "export"
    proc = run("export.py", "--load", trained_run, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights, cfg = resolve_checkpoint(trained_run)
    predictor = PosePredictor(cfg, weights)
    record = read_lsp(os.path.join(os.path.dirname(__file__), "..", "dataflow", "sample", "lsp"), "train")[0]
    crops, cmaps, _, _ = predictor.crop_views(cv2.imread(record.image), record.center, record.scale)
    np.save(tmp_path / "crops.npy", crops)
    np.save(tmp_path / "cmaps.npy", cmaps)
    expected = predictor.beliefs(crops, cmaps)
    script = f"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
tf.compat.v1.disable_eager_execution()
with tf.compat.v1.Session(graph=tf.Graph()) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], {str(out / "saved_model")!r})
    sig = meta.signature_def["prediction_pipeline"]
    out, parts = sess.run([sig.outputs["final_beliefs:0"].name, sig.outputs["final_parts:0"].name], {{
        sig.inputs["image:0"].name: np.load({str(tmp_path / "crops.npy")!r}),
        sig.inputs["center_map:0"].name: np.load({str(tmp_path / "cmaps.npy")!r})}})
assert "tensorpack" not in sys.modules
np.save({str(tmp_path / "saved.npy")!r}, out)
np.save({str(tmp_path / "parts.npy")!r}, parts)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "saved.npy"), expected, atol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "parts.npy"), predictor.outputs(crops, cmaps)[1], atol=1e-4)
    # The TFLite model gives the same maps in LiteRT, one crop per call.
    lite = LiteNetwork(str(out / "model.tflite"), ["final_beliefs", "final_parts"], cfg.MODEL.STAGES)
    np.testing.assert_allclose(lite(crops, cmaps)[0], expected, atol=1e-4)
    np.testing.assert_allclose(lite(crops, cmaps)[1], predictor.outputs(crops, cmaps)[1], atol=1e-4)
    np.testing.assert_allclose(lite.stage_beliefs(cfg.MODEL.STAGES, crops, cmaps), expected, atol=1e-4)
    # So does the ONNX model in onnxruntime, for the whole batch.
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_beliefs, onnx_parts = session.run(["final_beliefs:0", "final_parts:0"],
                                           {"image:0": crops, "center_map:0": cmaps.astype(np.float32)})
    np.testing.assert_allclose(onnx_beliefs, expected, atol=1e-4)
    np.testing.assert_allclose(onnx_parts, predictor.outputs(crops, cmaps)[1], atol=1e-4)
    # The exported folder is predicted from with LiteRT (its model.tflite is recorded as converted from its
    # weights), and its weights load back into TensorFlow too; once the weights change, the TFLite file is not used.
    w2, cfg2 = resolve_checkpoint(str(out / "weights.npz"))
    again = PosePredictor(cfg2, w2)
    assert isinstance(again.network, LiteNetwork)
    np.testing.assert_allclose(again.beliefs(crops, cmaps), expected, atol=1e-4)
    np.testing.assert_allclose(PosePredictor(cfg2, network=TFNetwork(cfg2, w2))
                               .beliefs(crops, cmaps), expected, atol=1e-5)
    assert lite_model(w2) == str(out / "model.tflite")
    with np.load(w2) as data:
        changed = {k: v * 2 if v.dtype.kind == "f" else v for k, v in data.items()}
    np.savez(w2, **changed)
    assert lite_model(w2) is None and isinstance(PosePredictor(cfg2, w2).network, TFNetwork)


@pytest.mark.slow
def test_fusing_a_single_plain_view_is_upsampling(trained_run):
    _, cfg = resolve_checkpoint(trained_run)
    predictor = PosePredictor(cfg, resolve_checkpoint(trained_run)[0])
    maps = np.random.default_rng(0).random((23, 23, 15)).astype(np.float32)
    order = predictor.geometry.belief_flip_order
    fused = fuse_views(predictor.codec, [maps], [1.0], [False], order)
    np.testing.assert_allclose(fused, predictor.codec.upsample(maps))


def test_pckh_and_within_radius_on_hand_built_records():
    gt = stick_person()
    rec = PersonRecord("a.jpg", gt.astype(np.float32), (50, 60), 0.6, "mpii", head_size=10.0)
    pred = gt[:, :2].copy()[None]
    pred[0, JOINT_INDEX["left_knee"], 0] += 5.0  # exactly 0.5 x head size: correct
    pred[0, JOINT_INDEX["left_ankle"], 0] += 5.01  # just past: wrong
    report = evaluate(pred, [rec], Geometry.from_config(build_config("paper")))
    assert report["pckh@0.5"] == pytest.approx(13 / 14)
    assert report["per_joint_pckh"]["left_ankle"] == 0
    # within_radius: crop-px errors against a radius, unannotated joints not scored.
    g = np.zeros((1, NUM_JOINTS, 3))
    g[..., 2] = VISIBLE
    g[0, 0, 2] = 0
    p = np.zeros((1, NUM_JOINTS, 2))
    p[0, 1] = (25, 0)
    p[0, 2] = (25.01, 0)
    r = within_radius(p, g, 25.0)[0]
    assert np.isnan(r[0]) and r[1] == 1 and r[2] == 0 and np.nansum(r) == NUM_JOINTS - 2


def test_predictions_json_counts_people_per_image():
    gt = stick_person().astype(np.float32)
    recs = [PersonRecord(p, gt, (0, 0), 1.0, "x") for p in ("/d/a.jpg", "/d/a.jpg", "/d/b.jpg")]
    out = predictions_json(np.zeros((3, NUM_JOINTS, 3)), recs, LSP14)
    assert [(p["image"], p["person"]) for p in out["predictions"]] == [("a.jpg", 0), ("a.jpg", 1), ("b.jpg", 0)]


def test_people_boxes_suppression_and_scale():
    boxes = np.array([[10, 10, 64, 128], [12, 12, 64, 128], [200, 10, 64, 128]])
    kept = suppress(boxes, [0.9, 1.2, 0.7])
    assert [s for _, s in kept] == [1.2, 0.7]  # the overlapping weaker box goes; best first
    assert suppress(boxes, [0.1, 0.2, 0.3]) == []  # all below the score threshold (NMSBoxes returns ())
    center, scale = box_center_scale([10, 20, 50, 100], person_fraction=0.75)
    np.testing.assert_allclose(center, (35, 70))
    assert scale == pytest.approx(100 * 0.75 / 200)


@pytest.mark.slow
def test_predict_on_a_video_writes_json_lines_and_an_annotated_video(trained_run, small_lsp, tmp_path):
    clip = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"mp4v"), 5, (160, 200))
    for k in range(1, 4):
        writer.write(cv2.resize(cv2.imread(os.path.join(small_lsp, "images", f"im{k:04d}.jpg")), (160, 200)))
    writer.release()
    out = str(tmp_path / "out.mp4")
    proc = run("predict.py", "--load", trained_run, "--image", clip, "--out-json", str(tmp_path / "j.jsonl"),
               "--out-image", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [line["image"] for line in lines] == [f"{clip}#{k}" for k in range(3)]
    video = cv2.VideoCapture(out)
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == 3


@pytest.mark.slow
def test_coco_results_load_in_pycocotools_with_the_joints_mapped(trained_run, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from tests.helpers import COCO_FIXTURE

    ours, coco = tmp_path / "p.json", tmp_path / "coco.json"
    proc = run("evaluate.py", "--load", trained_run, "--data", "coco", "--datadir", COCO_FIXTURE, "--split",
               "test_coco", "--save-predictions", str(ours), "--save-coco", str(coco))
    assert proc.returncode == 0, proc.stderr[-2000:]
    gt = COCO(os.path.join(COCO_FIXTURE, "test_coco.json"))
    results = json.loads(coco.read_text())
    dt = gt.loadRes(str(coco))  # pycocotools' loader accepts them: image ids of the ground truth, 51 numbers each
    assert len(dt.getAnnIds()) == len(results) == 12 and set(dt.getImgIds()) == set(gt.getImgIds())
    evaluation = COCOeval(gt, dt, "keypoints")
    evaluation.evaluate()
    evaluation.accumulate()
    first, mine = results[0], json.loads(ours.read_text())["predictions"][0]
    assert first["image_id"] == int(mine["image"].split(".")[0])  # 000000000785.jpg -> 785
    kp = np.array(first["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(kp[5, :2], mine["joints"][JOINT_INDEX["left_shoulder"]][:2], atol=1e-3)
    np.testing.assert_allclose(kp[16, :2], mine["joints"][JOINT_INDEX["right_ankle"]][:2], atol=1e-3)
    assert (kp[:5, 2] == 0).all() and (kp[5:, 2] == 2).all()  # face points unpredicted, the 12 shared joints given


def test_blazepose_finds_the_skier_and_boxes_the_whole_person():
    """The shipped BlazePose detector on a real photo: one person, a box around the annotated skier."""
    from eval.people import find_people
    from tests.helpers import COCO_FIXTURE

    image = cv2.imread(os.path.join(COCO_FIXTURE, "000000000785.jpg"))
    (box, center, scale), *others = find_people(image)
    assert not others
    gx, gy, gw, gh = 280.6, 44.6, 218.0, 346.4  # the annotation's bbox
    assert box[0] <= gx and box[1] <= gy + 10 and box[0] + box[2] >= gx + gw and box[1] + box[3] >= gy + gh - 10
    assert abs(center[0] - (gx + gw / 2)) < 40 and 0.8 < scale * 200 / gh < 1.6  # the person, at its size


def _person_at(dx, dy, scale=0.6):
    """The stick person shifted by (dx, dy) px, as a record of image "a.jpg" (size 0.6 x 200 = 120 px)."""
    joints = stick_person().astype(np.float32)
    joints[:, :2] += (dx, dy)
    return PersonRecord("a.jpg", joints, np.array([50 + dx, 60 + dy], np.float32), scale, "test")


def test_people_are_matched_by_mean_joint_distance_over_the_person_size():
    near, far = _person_at(0, 0), _person_at(300, 0)
    found = np.stack([far.joints + [[6, 0, 0]], near.joints + [[0, 24, 0]], near.joints + [[0, 90, 0]]])
    # costs: near: 300/120 = 2.5, 24/120 = 0.2, 90/120 = 0.75; far: 6/120 = 0.05, 324/120 = 2.7, ...
    assert match_people(found, [near, far]) == [(0, 1), (1, 0)]
    # the best assignment, not the greedy one; a pair at the threshold or beyond is no match
    assert match_people(found[2:], [near]) == []  # 0.75 >= 0.5
    assert match_people(found[2:], [near], max_distance=0.8) == [(0, 0)]
    assert match_people(np.zeros((0, NUM_JOINTS, 3)), [near]) == []
    # only annotated joints count: an unannotated joint far off changes nothing
    half = _person_at(0, 0)
    half.joints[JOINT_INDEX["left_ankle"], 2] = UNANNOTATED
    off = half.joints.copy()
    off[JOINT_INDEX["left_ankle"], :2] = (5000, 5000)
    assert match_people(off[None], [half]) == [(0, 0)]


class _FakeEstimator:
    """eval.api.PoseEstimator's interface with answers given per image: {image: [K, 3] arrays}."""

    spec, parts_from = LSP14, None

    def __init__(self, answers, detected):
        self.answers, self.detected_images, self.detected = answers, detected, None

    def __call__(self, image, parts=False):
        self.detected = self._current in self.detected_images
        return [type("P", (), {"array": lambda self, j=j: j})() for j in self.answers[self._current]]


def test_detected_evaluation_scores_misses_as_wrong_and_counts_matches(monkeypatch):
    """Three annotated people in two images: in a.jpg both are found (one exactly, one 40 px off: matched, as 40 /
    120 px < 0.5, but every joint wrong at PCK@0.2's 0.2 x 43.1 px), in b.jpg the detector finds nobody and the
    whole-image guess lands 400 px off: a miss. PCK@0.2 = 14 right of 42 = 1/3; PCP = 10 of 30 limbs."""
    import eval.evaluate as ev

    a1, a2 = _person_at(0, 0), _person_at(200, 0)
    b = _person_at(0, 0)
    b.image = "b.jpg"
    estimator = _FakeEstimator({"a.jpg": [a2.joints + [[0, 40, 0]], a1.joints.copy()],
                                "b.jpg": [b.joints + [[400, 0, 0]]]}, detected={"a.jpg"})
    monkeypatch.setattr(ev, "read_image", lambda path: setattr(estimator, "_current", path) or np.zeros((9, 9, 3)))
    pred, _, info, unmatched = ev.predict_detected(estimator, [a1, a2, b], progress=False)
    assert len(unmatched) == info["found"] - info["matched"]  # what COCO's AP counts as false positives
    assert info == {"people": 3, "matched": 2, "images": 2, "images_without_detection": 1, "found": 3}
    np.testing.assert_array_equal(pred[0], a1.joints)
    assert np.isnan(pred[2]).all()
    report = evaluate(pred, [a1, a2, b], Geometry.from_config(build_config("cpu")))
    assert report["pck@0.2"] == pytest.approx(14 / 42) and report["pcp"] == pytest.approx(10 / 30)
    assert report["count"] == {"people": 3, "limbs": 30, "joints": 42}  # the miss is scored, not left out
    assert "2 of 3 annotated matched (66.7 %" in ev.format_match(info)
    # the scoring entry point gives the same, with the match info and no part IoU
    predictor = types.SimpleNamespace(geometry=Geometry.from_config(build_config("cpu")), part_names=None,
                                      drawn_part_names=None)
    result = ev.score(predictor, [a1, a2, b], estimator=estimator, progress=False)
    assert (result.people, result.images) == (3, 2)
    assert result.pck == pytest.approx(14 / 42) and result.pcp == pytest.approx(10 / 30)
    assert result.report["match"] == info and "part_iou" not in result.report
    np.testing.assert_array_equal(result.pred, pred)
