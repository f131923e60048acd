"""Bad training data: unreadable images and impossible annotations are skipped and counted, or stop the run with one
line naming the file (TRAIN.BAD_SAMPLES), with 0 and 2 data workers; never a hang or a traceback."""
import dataclasses
import os
import re
import shutil

import numpy as np
import pytest
import scipy.io

from cpm.config import build_config
from cpm.errors import BadSample
from cpm.joints import JOINT_INDEX
from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.geometry import Geometry
from dataflow.images import read_image
from dataflow.lsp import read_lsp
from dataflow.mapper import BAD_SAMPLE, check_joints, is_marker, make_mapper
from dataflow.pipeline import build_train_dataflow
from eval.evaluate import predict_records
from eval.inference import PosePredictor
from tests.helpers import SMALL_CPM, run

GOOD = 12  # good people among the bad ones


def _corrupt(folder, k, kind):
    """Make image im{k:04d}.jpg of an LSP folder bad in the way ``kind`` names."""
    path = os.path.join(folder, "images", f"im{k:04d}.jpg")
    if kind == "truncated":
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
    elif kind == "empty":
        open(path, "wb").close()
    elif kind == "text":
        with open(path, "w") as f:
            f.write("this is not a JPEG\n")
    elif kind == "tiny":
        import cv2

        cv2.imwrite(path, np.full((1, 1, 3), 90, np.uint8))
    elif kind == "deleted":
        os.remove(path)
    return path


BAD_IMAGES = ("truncated", "empty", "text", "tiny", "deleted")
BAD_JOINTS = ("nan", "far")


@pytest.fixture
def bad_folder(tmp_path):
    """An LSP folder of GOOD real people followed by one bad record of each kind (images 13-19)."""
    root = tmp_path / "lsp"
    os.makedirs(root / "images")
    n = GOOD + len(BAD_IMAGES) + len(BAD_JOINTS)
    joints = scipy.io.loadmat(os.path.join(SAMPLE_LSP_DIR, "joints.mat"))["joints"][:, :, :n].copy()
    for k in range(1, n + 1):
        shutil.copy(os.path.join(SAMPLE_LSP_DIR, "images", f"im{k:04d}.jpg"), root / "images" / f"im{k:04d}.jpg")
    joints[0, 3, GOOD + len(BAD_IMAGES)] = np.nan  # left hip x of im0018
    joints[1, 12, GOOD + len(BAD_IMAGES) + 1] = 1e4  # neck y of im0019, far below its image
    joints[0, 0, 0] = -3.0  # im0001's right ankle a few px outside its image: kept, as LSPET has such joints
    scipy.io.savemat(root / "joints.mat", {"joints": joints})
    return str(root)


def _records(folder, kinds=BAD_IMAGES):
    """Records of the folder; the images are made bad afterwards, as if the disk changed during the run."""
    records = read_lsp(folder, "all")
    for i, kind in enumerate(kinds):
        _corrupt(folder, GOOD + i + 1, kind)
    return records


@pytest.mark.parametrize("kind, message", [
    ("truncated", "truncated JPEG"), ("empty", "empty file"), ("text", "not a decodable image"),
    ("tiny", "1x1 px is too small to train on"), ("deleted", r"cannot read \(No such file or directory\)"),
])
def test_unusable_images_are_bad_training_samples_naming_the_file(bad_folder, kind, message):
    records = read_lsp(bad_folder, "all")
    path = _corrupt(bad_folder, 1, kind)
    marker = make_mapper(records[:1], Geometry.from_config(build_config("cpu")), build_config("cpu").AUG)(0)
    assert is_marker(marker) and marker[0] == BAD_SAMPLE
    assert re.search(message, marker[1]) and marker[1].startswith(path)
    if kind != "tiny":  # any geometry is read: a 1x1 image is only too small to train on (predict poses it)
        with pytest.raises(BadSample, match=message):
            read_image(path)
    else:
        assert read_image(path).shape == (1, 1, 3)


def test_nan_and_far_outside_joints_are_bad_but_a_few_px_outside_is_kept(bad_folder):
    records = read_lsp(bad_folder, "all")
    check_joints(records[0], read_image(records[0].image).shape)  # -3 px: fine
    nan, far = records[GOOD + len(BAD_IMAGES)], records[GOOD + len(BAD_IMAGES) + 1]
    with pytest.raises(BadSample, match="im0018.jpg: NaN or infinite"):
        check_joints(nan, read_image(nan.image).shape)
    shape = read_image(far.image).shape
    with pytest.raises(BadSample, match=f"im0019.jpg: an annotated joint lies far outside the {shape[1]}x{shape[0]}"):
        check_joints(far, shape)
    joints = far.joints.copy()
    joints[JOINT_INDEX["neck"], 2] = 0  # the same place on an unannotated joint says nothing: not bad
    check_joints(dataclasses.replace(far, joints=joints), shape)


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_counts_bad_records_and_trains_on_the_rest(bad_folder, workers):
    records = _records(bad_folder)
    cfg = build_config("cpu", [f"TRAIN.NUM_WORKERS={workers}", "TRAIN.BATCH_SIZE=4"])
    flow = build_train_dataflow(records, cfg, seed=0)
    flow.reset_state()
    batches = [b for _, b in zip(range(GOOD // 4 * 2), flow, strict=False)]  # two passes' worth with workers
    assert len(batches) == (GOOD // 4 if workers == 0 else GOOD // 4 * 2)  # 0 workers: one pass, bad ones left out
    assert all(b[0].shape == (4, 184, 184, 3) for b in batches)
    bad = flow.bad_samples
    assert bad.error is None and bad.count >= (7 if workers == 0 else 1)
    assert bad.summary().startswith(f"skipped {bad.count} bad sample") and "im00" in bad.summary()


@pytest.mark.parametrize("workers", [0, 2])
def test_stop_ends_the_flow_naming_the_file(bad_folder, workers):
    records = _records(bad_folder)
    cfg = build_config("cpu", [f"TRAIN.NUM_WORKERS={workers}", "TRAIN.BATCH_SIZE=4", "TRAIN.BAD_SAMPLES=stop"])
    flow = build_train_dataflow(records[GOOD:], cfg, seed=0)  # bad records only
    flow.reset_state()
    from tensorpack.dataflow import DataFlowTerminated

    with pytest.raises(DataFlowTerminated):
        next(iter(flow))
    assert isinstance(flow.bad_samples.error, BadSample)
    assert str(flow.bad_samples.error).startswith(f"bad sample {bad_folder}/images/im00")


def test_evaluation_never_skips(bad_folder):
    """The one prediction path (evaluate.py, ship.py, the epoch report) stops at the first bad record, naming it."""
    records = _records(bad_folder)
    predictor = PosePredictor(build_config("cpu", ["TRAIN.BAD_SAMPLES=skip"]), None)
    with pytest.raises(BadSample, match=rf"^{re.escape(records[GOOD].image)}: truncated JPEG") as e:
        predict_records(predictor, records, progress=False)
    assert "BAD_SAMPLES" not in str(e.value)  # no setting makes evaluation skip


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_training_run_skips_or_stops_in_one_line(bad_folder, policy):
    _records(bad_folder, [k for k in BAD_IMAGES if k != "deleted"])  # one missing at the start is an error at once
    args = ["--smoke", "--datadir", bad_folder, "--val-data", "lsp", "--val-split", "601-616",
            "--logdir", os.path.join(bad_folder, "run"),
            *SMALL_CPM, "TRAIN.BATCH_SIZE=4", "TRAIN.STEPS_PER_EPOCH=6", f"TRAIN.BAD_SAMPLES={policy}"]
    proc = run("train.py", *args)
    assert "Traceback" not in proc.stderr
    if policy == "skip":
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert re.search(r"skipped [0-9]+ bad samples?: .*im00(13|14|15|16|18|19)\.jpg: ", proc.stdout)
    else:
        assert proc.returncode == 2
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: bad sample {bad_folder}/images/im00"), last
