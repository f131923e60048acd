"""The shipped model (models/cpm-lsp): what it holds, that the scripts use it by default, and that it still scores on
20 validation people it never trained on (tests/fixtures/lsp_val: LSP im0801-0820)."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cpm.checkpoint import SHIPPED_MODEL, lite_model, resolve_checkpoint
from cpm.keypoints import LSP14
from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.lsp import read_lsp
from eval.api import PoseEstimator
from eval.evaluate import predict_records
from eval.inference import PosePredictor
from eval.metrics import pose_scores
from eval.network import LiteNetwork
from eval.tf_network import TFNetwork
from tests.helpers import FIXTURES, ROOT, run

VAL_DIR = os.path.join(FIXTURES, "lsp_val")
# PCK@0.2 on these 20 people when the model was shipped (2026-12-05, campaign 2's step 13500): 82.1 as shipped; 61.8
# with RGB instead of BGR input, 42.1 with left and right swapped, 2.5 with random weights (a loader that loaded
# nothing). The threshold sits between; re-measure the four when a new model is shipped.
MIN_PCK = 0.72


@pytest.fixture(scope="module")
def scored():
    """(PCK@0.2 as shipped, with RGB input, with left/right swapped); the LiteRT and TensorFlow runs agree."""
    weights, cfg = resolve_checkpoint(None)
    predictor = PosePredictor(cfg, weights)
    assert isinstance(predictor.network, LiteNetwork)
    records = read_lsp(VAL_DIR, "all")
    gt = np.stack([r.joints for r in records])
    pred = predict_records(predictor, records)[0]
    in_tf = predict_records(PosePredictor(cfg, network=TFNetwork(cfg, weights)), records)[0]
    # The two runtimes' beliefs differ in the 4th decimal (scores agree to 0.01); on a flat bicubic peak that can move
    # an arg-max by a pixel or so, so a few joints may shift that far while the rest agree exactly.
    np.testing.assert_allclose(pred[..., 2], in_tf[..., 2], atol=0.01)
    shift = np.abs(pred[..., :2] - in_tf[..., :2])
    assert shift.max() < 2.0 and np.mean(shift > 0.01) < 0.02, (shift.max(), np.mean(shift > 0.01))
    original = predictor.crop_views
    predictor.crop_views = lambda image, c, s: original(image[:, :, ::-1].copy(), c, s)  # a loader giving RGB
    rgb = predict_records(predictor, records)[0]
    return [pose_scores(p, gt, LSP14)["pck@0.2"] for p in (pred, rgb, pred[:, LSP14.flip_permutation])]


def test_the_shipped_model_holds_weights_config_card_and_curve():
    names = set(os.listdir(SHIPPED_MODEL))
    assert {"weights.npz", "model.tflite", "config.json", "README.md", "curve.png"} <= names
    assert sum(os.path.getsize(os.path.join(SHIPPED_MODEL, n)) for n in names) < 10 * 2**20
    # predict.py runs the TFLite copy (LiteRT): config.json records it as converted from these very weights
    assert lite_model(os.path.join(SHIPPED_MODEL, "weights.npz")) == os.path.join(SHIPPED_MODEL, "model.tflite")
    with open(os.path.join(SHIPPED_MODEL, "README.md")) as f:
        stored = np.float16 if "- Weights: float16" in f.read() else np.float32  # as the model card says
    with np.load(os.path.join(SHIPPED_MODEL, "weights.npz")) as w:
        assert {v.dtype for v in w.values() if v.dtype.kind == "f"} == {np.dtype(stored)}
    with open(os.path.join(SHIPPED_MODEL, "config.json")) as f:
        config = json.load(f)["config"]
    # its parts are drawn around its joints, which beat the part stages on validation: it carries no part layer
    assert config["PRESET"] == "lsp" and config["MODEL"]["PARTS_FROM"] == "skeleton"
    assert config["MODEL"]["PART_STAGES"] == 0 and config["MODEL"]["PART_HEAD"] == 0


@pytest.mark.slow
def test_the_shipped_model_still_scores(scored):
    pck, rgb, swapped = scored
    assert pck >= MIN_PCK
    assert rgb < MIN_PCK and swapped < MIN_PCK  # the threshold catches a wrong channel or joint order


@pytest.mark.slow
def test_scripts_use_the_shipped_model_without_load(tmp_path):
    out = tmp_path / "p.json"
    image = os.path.join(VAL_DIR, "images", "im0001.jpg")
    proc = run("predict.py", "--image", image, "--out-json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "using the shipped model models/cpm-lsp" in proc.stdout
    people = json.loads(out.read_text())["people"]  # as many as the detector finds (at least the whole image)
    assert people and all(len(person["joints"]) == 14 for person in people)


def test_a_person_cut_by_the_frame_tiny_or_boxed_past_the_border_gets_a_pose_inside_the_image():
    """Bad input a user's photo can be: the left 40 % of a validation photo (the person cut by the border), the
    photo shrunk to 30 px tall, and a box reaching past the image's edges: every person gets 14 joints on pixels of
    the image, with scores, and no error."""
    estimator = PoseEstimator()
    photo = cv2.imread(os.path.join(VAL_DIR, "images", "im0001.jpg"))
    h, w = photo.shape[:2]
    cut = np.ascontiguousarray(photo[:, : int(0.4 * w)])
    tiny = cv2.resize(photo, (round(30 * w / h), 30), interpolation=cv2.INTER_AREA)
    for image, box in ((cut, None), (tiny, None), (photo, (w - 20.0, -10.0, 60.0, h + 20.0))):
        people = estimator(image, box=box)
        assert people and (estimator.detected is None) == (box is not None)
        for person in people:
            joints = person.array()
            assert joints.shape == (14, 3) and np.isfinite(joints).all() and (joints[:, 2] > 0).all()
            assert ((joints[:, :2] >= 0) & (joints[:, :2] <= [image.shape[1] - 1, image.shape[0] - 1])).all()
        if box is not None:
            assert people[0].box == box


def _run_without_tensorflow(script, *args):
    """scripts/<script> with ``args`` in a new process that fails if TensorFlow or tensorpack got imported."""
    code = ("import runpy, sys\n"
            f"sys.argv = [{script!r}, *{list(args)!r}]\n"
            f"runpy.run_path('scripts/{script}', run_name='__main__')\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorpack')], 'imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.mark.slow
def test_predict_on_a_photo_imports_no_tensorflow(tmp_path):
    # TensorFlow's import is most of a cold start: predict.py with the shipped model runs on LiteRT alone.
    image = os.path.join(VAL_DIR, "images", "im0001.jpg")
    proc = _run_without_tensorflow("predict.py", "--image", image, "--out-json", str(tmp_path / "p.json"))
    assert proc.stdout.splitlines() == ["using the shipped model models/cpm-lsp (--load to use another)",
                                        f"{image}: 2 people"] and proc.stderr == ""
    assert len(json.loads((tmp_path / "p.json").read_text())["people"]) == 2  # the detector finds two


@pytest.mark.slow
def test_evaluate_with_the_shipped_model_imports_no_tensorflow():
    # scoring on LiteRT: neither the crops and part targets (dataflow.mapper) nor the progress bar import tensorpack
    proc = _run_without_tensorflow("evaluate.py", "--data", "lsp", "--datadir", SAMPLE_LSP_DIR, "--split", "1-5")
    assert "5 people, 50 limbs and 70 joints scored" in proc.stdout


@pytest.mark.slow
def test_parts_are_scored_with_and_without_a_box(tmp_path):
    # mean part IoU of the drawn parts on these 20 people when the model was shipped (2026-12-06): 57.2 with the
    # annotated box, 53.8 without (on the 200 validation people 60.5 and 58.9; the part stages it was trained with
    # scored 46.4 and 45.0)
    for boxes, least in (("annotated", 0.53), ("detected", 0.50)):
        out = tmp_path / f"{boxes}.json"
        proc = run("evaluate.py", "--data", "lsp", "--datadir", VAL_DIR, "--split", "all", "--boxes", boxes,
                   "--out-json", str(out))
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads(out.read_text())
        assert report["part_people"] == 20 and list(report["skeleton_part_iou"]) == list(LSP14.part_names("seed7"))
        assert "part_iou" not in report and "skeleton IoU: head" in proc.stdout
        assert report["skeleton_mean_part_iou"] >= least, (boxes, report["skeleton_mean_part_iou"])
