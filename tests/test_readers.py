"""MPII, JHMDB, COCO and TFRecord readers on real samples (tests/fixtures) and fixtures built in the official layouts.

Expected values are read off the sample files by hand (quoted in comments), not recomputed with the code under test.
"""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from cpm.errors import UserError
from cpm.joints import JOINT_INDEX, OCCLUDED, UNANNOTATED, VISIBLE
from cpm.keypoints import COCO17, JHMDB15, LSP14, MPII16
from dataflow.datasets import load_records
from dataflow.masks import PolygonMask, RLEMask, encode_mask
from dataflow.records import map_records
from dataflow.tfrecord import read_image_bytes, write_tfrecord
from tests.helpers import COCO_FIXTURE, JHMDB_FIXTURE, MPII_FIXTURE, run, write_jhmdb_official, write_mpii_mat

J = JOINT_INDEX


def lsp_records(*args, **kwargs):
    """load_records' people with lsp14's joints (as the shipped model trains on them), for checks by lsp14 name."""
    return map_records(load_records(*args, **kwargs), LSP14)


@pytest.fixture(scope="module")
def mpii_mat(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mpii_mat"))
    write_mpii_mat(root)
    return root


@pytest.fixture(scope="module")
def jhmdb_official(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("jhmdb_official"))
    write_jhmdb_official(root)
    return root


def test_joint_sets_name_their_left_right_pairs():
    names = lambda js: {(js.names[i], js.names[j]) for i, j in js.pairs}  # noqa: E731
    assert len(COCO17.pairs) == 8  # eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
    assert ("left_eye", "right_eye") in names(COCO17)
    assert len(MPII16.pairs) == 6 and len(JHMDB15.pairs) == 6
    assert ("right_ankle", "left_ankle") in names(MPII16)  # MPII lists the right side first


def test_mpii_json_conversion():
    records = lsp_records("mpii", MPII_FIXTURE, "test_mpii")
    assert len(records) == 5
    r = records[0]  # 005808361.jpg: joints[9] (head top) = [962.2409, 80.0306], 1-based; center [966, 340]
    assert os.path.basename(r.image) == "005808361.jpg"
    np.testing.assert_allclose(r.joints[J["head_top"]], [961.2409, 79.0306, VISIBLE], atol=1e-4)
    np.testing.assert_allclose(r.center, [965, 339])
    assert r.scale == pytest.approx(4.718488) and r.head_size is None
    ankles = records[2].joints[[J["right_ankle"], J["left_ankle"]]]  # 051423444.jpg: joints_vis[0] = [5] = 0
    np.testing.assert_array_equal(ankles, [[0, 0, UNANNOTATED]] * 2)


def test_mpii_official_mat_splits_visibility_and_head_size(mpii_mat):
    # Five annotated people; the test image and the rect without annopoints yield nothing.
    assert len(lsp_records("mpii", mpii_mat, "trainval")) == 5
    val = lsp_records("mpii", mpii_mat, "val")  # Tompson's list: entries 2 and 4
    assert [os.path.basename(r.image) for r in val] == ["052475643.jpg", "004645041.jpg"]
    train = lsp_records("mpii", mpii_mat, "train")
    assert len(train) == 3 and not {r.image for r in train} & {r.image for r in val}
    r = lsp_records("mpii", mpii_mat, "trainval")[0]
    # is_visible "1" (string), [] (missing) and 0 on r ankle, r knee, r hip
    assert r.joints[J["right_ankle"], 2] == VISIBLE and r.joints[J["right_knee"], 2] == VISIBLE
    assert r.joints[J["right_hip"], 2] == OCCLUDED
    np.testing.assert_allclose(r.joints[J["right_ankle"]], [803, 710, VISIBLE])  # [804, 711] 1-based
    # head box side = |[962.2409, 80.0306] - [982.7591, 235.9694]| = 157.283; 0.6 x diagonal = 0.6 x 157.283 x sqrt 2
    assert r.head_size == pytest.approx(133.459, abs=1e-3)
    np.testing.assert_allclose(r.center, [965, 339])


def test_mpii_errors(mpii_mat, tmp_path):
    with pytest.raises(UserError, match="unknown MPII split 'test'"):
        lsp_records("mpii", mpii_mat, "test")
    own = str(tmp_path / "own")  # the module's folder stays whole for the tests after this one
    write_mpii_mat(own)
    os.remove(os.path.join(own, "mpii_valid_pred", "data", "detections.mat"))
    with pytest.raises(UserError, match="validation split.*trainval"):
        lsp_records("mpii", own, "val")
    with pytest.raises(UserError, match="MPII annotations not found"):
        lsp_records("mpii", str(tmp_path), "train")
    (tmp_path / "train.json").write_text(json.dumps([{"image": "a.jpg", "joints": [[1, 2]] * 15,
                                                      "joints_vis": [1] * 15, "center": [5, 5], "scale": 1}]))
    with pytest.raises(UserError, match=r"person 0 has joints \(15, 2\)"):
        lsp_records("mpii", str(tmp_path), "train")


def test_jhmdb_coco_style_json():
    records = lsp_records("jhmdb", JHMDB_FIXTURE, "test")  # test_jhmdb_sub1.json
    assert len(records) == 3
    r = records[0]  # keypoint 3 (head): 100.914365, 79.770933, 2; bbox [79, 62, 54, 159]
    np.testing.assert_allclose(r.joints[J["head_top"]], [100.914365, 79.770933, VISIBLE], atol=1e-4)
    np.testing.assert_allclose(r.center, [106, 141.5])
    assert r.scale == pytest.approx(159 / 200) and r.mask is None


def test_jhmdb_official_layout_splits_stride_and_masks(jhmdb_official):
    assert len(lsp_records("jhmdb", jhmdb_official, "train")) == 6  # videos 0 and 2, 3 frames each
    assert len(lsp_records("jhmdb", jhmdb_official, "test1")) == 3
    assert len(lsp_records("jhmdb", jhmdb_official, "all")) == 9
    records = lsp_records("jhmdb", jhmdb_official, "train", _reader(JHMDB_FRAME_STRIDE=2))
    assert [os.path.basename(r.image) for r in records] == ["00001.png", "00003.png"] * 2
    r = records[1]  # frame 3 of Frisbee_catch_..._0: the real head (100.914365, 79.770933) moved right by 2 px
    np.testing.assert_allclose(r.joints[J["head_top"]], [102.914365, 79.770933, VISIBLE], atol=1e-4)
    mask = r.mask.load()
    assert mask.shape == (240, 320) and mask.dtype == np.uint8
    xy = np.round(r.joints[:, :2]).astype(int)
    assert mask[xy[:, 1], xy[:, 0]].mean() > 0.8  # the synthetic mask is the joints' hull


def test_jhmdb_errors(jhmdb_official, tmp_path):
    with pytest.raises(UserError, match="unknown JHMDB split 'train4'"):
        lsp_records("jhmdb", jhmdb_official, "train4")
    broken = str(tmp_path / "j")
    shutil.copytree(jhmdb_official, broken)
    with open(os.path.join(broken, "splits", "catch_test_split1.txt"), "a") as f:
        f.write("some_video.avi 3\n")
    with pytest.raises(UserError, match=r"catch_test_split1.txt line 4: expected '<video>.avi 1\|2'"):
        lsp_records("jhmdb", broken, "train")
    shutil.rmtree(os.path.join(broken, "splits"))
    with pytest.raises(UserError, match="splits not found"):
        lsp_records("jhmdb", broken, "train")
    shutil.rmtree(os.path.join(broken, "Rename_Images"))
    with pytest.raises(UserError, match=r"none of the \d+ images of split 'all' .* exists \(the first: .*\.png\)"):
        lsp_records("jhmdb", broken, "all")


def _reader(**overrides):
    from cpm.config import build_config

    return build_config(overrides=[f"READER.{k}={v!r}" for k, v in overrides.items()]).READER


def test_coco_mapping_visibility_masks_and_filters(tmp_path):
    records = lsp_records("coco", COCO_FIXTURE, "test_coco")
    assert len(records) == 12  # 14 annotations, two with no keypoints
    r = records[0]  # id 442619: l/r shoulder (399, 108) / (358, 129); l/r eye (374, 73) / (360, 75)
    np.testing.assert_allclose(r.joints[J["neck"]], [378.5, 118.5, VISIBLE])
    # head top = eyes' middle (367, 74) + 0.6 x ((367, 74) - (378.5, 118.5))
    np.testing.assert_allclose(r.joints[J["head_top"]], [360.1, 47.3, VISIBLE], atol=1e-4)
    mask = r.mask.load()
    assert mask.shape == (425, 640) and abs(mask.sum() - 27789.11) / 27789.11 < 0.01  # COCO's area
    r = records[1]  # id 198196: left hip (57, 246, 1), left elbow (0, 0, 0)
    np.testing.assert_allclose(r.joints[J["left_hip"]], [57, 246, OCCLUDED])
    np.testing.assert_allclose(r.joints[J["left_elbow"]], [0, 0, UNANNOTATED])
    # num_keypoints of the 12: 17 14 15 15 15 12 17 16 16 15 16 13 -> nine have 15 or more
    assert len(lsp_records("coco", COCO_FIXTURE, "test_coco", _reader(COCO_MIN_KEYPOINTS=15))) == 9
    with open(os.path.join(COCO_FIXTURE, "test_coco.json")) as f:
        data = json.load(f)
    data["annotations"][0]["iscrowd"] = 1
    shutil.copy(os.path.join(COCO_FIXTURE, "000000000785.jpg"), tmp_path)
    (tmp_path / "crowd.json").write_text(json.dumps(data))
    for name in {im["file_name"] for im in data["images"]}:
        shutil.copy(os.path.join(COCO_FIXTURE, name), tmp_path)
    assert len(lsp_records("coco", str(tmp_path), "crowd")) == 11
    assert len(lsp_records("coco", str(tmp_path), "crowd", _reader(COCO_SKIP_CROWD=False))) == 12


def test_coco_errors(tmp_path):
    with pytest.raises(UserError, match="annotations of split 'val' not found"):
        lsp_records("coco", COCO_FIXTURE, "val")
    # 16 of COCO's names are a set of their own (a user's file), and its skeleton must stay within them
    person16 = {"id": 1, "name": "person", "keypoints": list(COCO17.names[:-1]), "skeleton": [[1, 2], [16, 17]]}
    (tmp_path / "x.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [person16]}))
    with pytest.raises(UserError, match="category 'person' has a skeleton edge outside its 16 keypoints"):
        lsp_records("coco", str(tmp_path), "x")
    (tmp_path / "x.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {**person16, "skeleton": [[1, 2]]}]}))
    with pytest.raises(UserError, match="x.json has no usable person"):
        lsp_records("coco", str(tmp_path), "x")
    (tmp_path / "z.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1}]}))
    with pytest.raises(UserError, match="z.json has no category with keypoints"):
        lsp_records("coco", str(tmp_path), "z")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(UserError, match="y.json is not valid JSON"):
        lsp_records("coco", str(tmp_path), "y")


def test_rle_masks_hand_checked():
    # Uncompressed COCO RLE runs column by column, starting with zeros: 2 zeros, 3 ones, 1 zero on a 2 x 3 image.
    np.testing.assert_array_equal(RLEMask((2, 3, 1), 2, 3).load(), [[0, 1, 1], [0, 1, 0]])
    mask = np.zeros((5, 7), np.uint8)
    mask[1:4, 2:6] = 1
    np.testing.assert_array_equal(encode_mask(mask).load(), mask)
    square = PolygonMask(((1.0, 1.0, 5.0, 1.0, 5.0, 4.0, 1.0, 4.0),), 6, 8).load()
    assert square.shape == (6, 8) and square[2, 3] == 1 and square[0, 0] == 0 and 9 <= square.sum() <= 20


def _same_records(a, b, tol=1e-3):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.joints[:, :2], y.joints[:, :2], atol=tol)
        np.testing.assert_array_equal(x.joints[:, 2], y.joints[:, 2])
        np.testing.assert_array_equal(x.center, y.center)
        assert (x.scale, x.head_size, x.dataset) == (y.scale, y.head_size, y.dataset)
        assert read_image_bytes(x.image) == read_image_bytes(y.image)
        assert (x.mask is None) == (y.mask is None)
        if x.mask is not None:
            np.testing.assert_array_equal(x.mask.load(), y.mask.load())


def test_tfrecord_round_trip(tmp_path, mpii_mat, jhmdb_official):
    for name, datadir, split in (("coco", COCO_FIXTURE, "test_coco"), ("mpii", mpii_mat, "trainval"),
                                 ("jhmdb", jhmdb_official, "all")):
        records = lsp_records(name, datadir, split)
        out = str(tmp_path / f"{name}.tfrecord")
        images = write_tfrecord(records, out)
        assert images == len({r.image for r in records})
        assert sum(1 for _ in tf.data.TFRecordDataset(out)) == images  # TensorFlow's own reader agrees
        again = lsp_records("tfrecord", out, "ignored")  # a file is its own split
        _same_records(records, again)
        write_tfrecord(again, str(tmp_path / "again.tfrecord"))  # records read from a TFRecord convert too
        _same_records(again, lsp_records("tfrecord", str(tmp_path / "again.tfrecord"), ""))
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(str(tmp_path / "coco.tfrecord")))).numpy())
    f = example.features.feature
    assert f["image/object/count"].int64_list.value[0] == 1 and f["image/format"].bytes_list.value[0] == b"JPEG"
    assert f["image/object/parts/x"].float_list.value[0] == pytest.approx(360.1 / 640, abs=1e-6)  # head top


def test_tfrecord_from_another_writer_uses_the_schema_only(tmp_path):
    """Without our image/extra the parts map by their count (17 = COCO) and the box gives centre and scale."""
    image = os.path.join(COCO_FIXTURE, "000000000785.jpg")
    kps = [367, 81, 2, 374, 73, 2, 360, 75, 2, 386, 78, 2, 356, 81, 2, 399, 108, 2, 358, 129, 2, 433, 142, 2, 341,
           159, 2, 449, 165, 2, 309, 178, 2, 424, 203, 2, 393, 214, 2, 429, 294, 2, 367, 273, 2, 466, 362, 2, 396,
           341, 2]
    xy = np.array(kps, np.float64).reshape(17, 3)
    feat = lambda **kw: {k.replace("__", "/"): v for k, v in kw.items()}  # noqa: E731
    floats = lambda v: tf.train.Feature(float_list=tf.train.FloatList(value=v))  # noqa: E731
    ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=v))  # noqa: E731
    features = feat(image__encoded=tf.train.Feature(bytes_list=tf.train.BytesList(value=[open(image, "rb").read()])),
                    image__height=ints([425]), image__width=ints([640]), image__object__count=ints([1]),
                    image__object__bbox__xmin=floats([0.25]), image__object__bbox__xmax=floats([0.75]),
                    image__object__bbox__ymin=floats([0.2]), image__object__bbox__ymax=floats([0.8]),
                    image__object__parts__x=floats(list(xy[:, 0] / 640)),
                    image__object__parts__y=floats(list(xy[:, 1] / 425)), image__object__parts__v=ints([2] * 17))
    out = str(tmp_path / "foreign.tfrecord")
    with tf.io.TFRecordWriter(out) as w:
        w.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    (r,) = lsp_records("tfrecord", out, "")
    np.testing.assert_allclose(r.joints[J["head_top"]], [360.1, 47.3, VISIBLE], atol=1e-3)
    np.testing.assert_allclose(r.center, [320, 212.5], atol=1e-3)  # box 160..480 x 85..340
    assert r.scale == pytest.approx(320 / 200, abs=1e-5)
    assert cv2.imdecode(np.frombuffer(read_image_bytes(r.image), np.uint8), cv2.IMREAD_COLOR).shape == (425, 640, 3)


def test_tfrecord_errors(tmp_path):
    records = lsp_records("coco", COCO_FIXTURE, "test_coco")
    out = str(tmp_path / "c.tfrecord")
    write_tfrecord(records, out)
    data = open(out, "rb").read()
    (tmp_path / "cut.tfrecord").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.tfrecord is truncated"):
        lsp_records("tfrecord", str(tmp_path / "cut.tfrecord"), "")
    (tmp_path / "text.tfrecord").write_bytes(b"hello, this is not a TFRecord at all\n" * 3)
    with pytest.raises(UserError, match="text.tfrecord"):
        lsp_records("tfrecord", str(tmp_path / "text.tfrecord"), "")
    with pytest.raises(UserError, match="has no val.tfrecord"):
        lsp_records("tfrecord", str(tmp_path), "val")


@pytest.mark.slow
def test_convert_and_show_data_for_every_reader(tmp_path, jhmdb_official):
    out = str(tmp_path / "mpii.tfrecord")
    result = run("convert_tfrecord.py", "--data", "mpii", "--datadir", MPII_FIXTURE, "--split", "test_mpii",
                 "--out", out)
    assert result.returncode == 0, result.stderr
    assert "5 images, 5 people (0 with masks)" in result.stdout
    for data, datadir, split in (("mpii", MPII_FIXTURE, "test_mpii"), ("jhmdb", jhmdb_official, "all"),
                                 ("coco", COCO_FIXTURE, "test_coco"), ("tfrecord", out, "all")):
        png = str(tmp_path / f"{data}.png")
        result = run("show_data.py", "--data", data, "--datadir", datadir, "--split", split, "--out", png, "--n", "4",
                     "--preset", "cpu")
        assert result.returncode == 0, result.stderr
        assert cv2.imread(png).shape == (2 * 184, 2 * 3 * 184, 3)  # 2 x 2 tiles: crop, beliefs, part targets
    result = run("show_data.py", "--data", "coco", "--datadir", str(tmp_path), "--split", "val", "--out", png)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("error: annotations of split")


@pytest.mark.slow
def test_evaluate_reads_mpii_and_its_tfrecord_alike_with_pckh(trained_run, mpii_mat, tmp_path):
    out = str(tmp_path / "mpii.tfrecord")
    write_tfrecord(lsp_records("mpii", mpii_mat, "trainval"), out)
    reports = []
    for data, datadir in (("mpii", mpii_mat), ("tfrecord", out)):
        proc = run("evaluate.py", "--load", trained_run, "--data", data, "--datadir", datadir, "--split", "trainval",
                   "--json", str(tmp_path / f"{data}.json"))
        assert proc.returncode == 0, proc.stderr
        with open(tmp_path / f"{data}.json") as f:
            reports.append(json.load(f))
    assert reports[0]["count"]["people"] == 5 and reports[0]["pckh@0.5"] is not None  # MPII head boxes -> PCKh
    for key in ("pcp", "pck@0.2", "pckh@0.5"):
        assert reports[0][key] == pytest.approx(reports[1][key], abs=1e-9)
