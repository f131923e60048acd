"""Test helpers shared by the test modules (tests import this module, never conftest or each other)."""
import fcntl
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import scipy.io
import tensorflow as tf
from tensorpack.tfutils.tower import TowerContext

import cpm  # noqa: F401  (TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from cpm.config import build_config
from cpm.joints import JOINT_INDEX, NUM_JOINTS, VISIBLE
from cpm.model import CPMModel
from dataflow.geometry import Geometry

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# A small CPM (two stages, one part stage, narrow, 96 px) for tests of the training machinery rather than of the
# network: a smoke run of it takes about a third of the cpu preset's time, most of which is building the graph
SMALL_CPM = ("--config", "MODEL.STAGES=2", "MODEL.PART_STAGES=1", "DATA.INPUT_SIZE=96",
             "MODEL.TRUNK_WIDTHS=[8,8,16,16,16,8]", "MODEL.STAGE1_WIDTH=16", "MODEL.STAGE_WIDTH=8")


def built_once(tmp_path_factory, name, build):
    """The folder ``name``, made by ``build(folder)`` once for the whole test run: under ``pytest -n``, the first
    worker to ask builds it while the others wait, and every worker reuses it (each would otherwise build its own
    copy of a session or module fixture). Tests must not change what is in it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # local workers' base folders are siblings in the run's own; the run's id keeps remote workers' apart too
        root, name = root.parent, f"{name}-{os.environ['PYTEST_XDIST_TESTRUNUID']}"
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # left by a build that failed
            folder.mkdir()
            build(folder)
            (root / f"{name}.built").touch()
    return folder


def run(script, *args):
    """Run ``scripts/<script>`` as a user would; returns the CompletedProcess (stdout, stderr as text)."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args], capture_output=True,
                          text=True, timeout=600)


def fill(disk, leave):
    """Fill the file system of folder ``disk`` (a test's tmpfs) but ``leave`` bytes, with the file ``disk/filler``
    (emptied first)."""
    with open(os.path.join(disk, "filler"), "wb") as f:
        stat = os.statvfs(disk)
        f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))


def write_lsp_folder(root, joints, image_digits=4, image_size=(120, 80)):
    """An LSP-layout folder with a ``joints`` array as given and one small grey image per entry."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    scipy.io.savemat(os.path.join(root, "joints.mat"), {"joints": joints})
    first = os.path.join(root, "images", f"im{1:0{image_digits}d}.jpg")
    cv2.imwrite(first, np.full(image_size + (3,), 100, np.uint8))
    for k in range(2, joints.shape[-1] + 1):
        os.link(first, os.path.join(root, "images", f"im{k:0{image_digits}d}.jpg"))
    return root


# Real samples in other formats, copied unchanged from ../shared/data/samples (see tests/fixtures/README.md).
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


MPII_FIXTURE = os.path.join(FIXTURES, "mpii")


JHMDB_FIXTURE = os.path.join(FIXTURES, "jhmdb")


COCO_FIXTURE = os.path.join(FIXTURES, "coco")


def _struct_array(items, fields):
    """A 1 x N MATLAB struct array (savemat writes numpy structured object arrays as struct arrays); a field an
    item lacks is empty, as in MATLAB."""
    arr = np.zeros((1, len(items)), dtype=[(f, object) for f in fields])
    for i, item in enumerate(items):
        for f in fields:
            arr[0, i][f] = item.get(f, np.zeros((0, 0)))
    return arr


def write_mpii_mat(root):
    """An official-layout MPII folder built from the real JSON sample's five people.

    The joints, centres, scales and images are real; the head boxes are synthetic (a square on the head segment,
    side = head top to upper neck), and three entries exercise the release's quirks: a test image without
    annopoints, a rect without annopoints, and is_visible given as a string, as an empty array and as 0.
    Tompson's validation list names the people of entries 2 and 4. Returns the expected records' joints (MPII
    order, 0-based) and head sizes, in file order.
    """
    with open(os.path.join(MPII_FIXTURE, "test_mpii.json")) as f:
        people = json.load(f)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    annolist, img_train, expected = [], [], []
    for n, person in enumerate(people):
        shutil.copy(os.path.join(MPII_FIXTURE, "images", person["image"]), os.path.join(root, "images"))
        xy = np.asarray(person["joints"])  # 1-based, as in the .mat
        points = []
        for j, (x, y) in enumerate(xy):
            if not person["joints_vis"][j]:
                continue  # the .mat lists annotated joints only
            visible = {0: "1", 1: np.zeros((0, 0)), 2: 0}.get(j, 1) if n == 0 else 1
            points.append({"x": x, "y": y, "id": j, "is_visible": visible})
        side = float(np.linalg.norm(xy[9] - xy[8]))
        mid = (xy[9] + xy[8]) / 2
        rect = {"x1": mid[0] - side / 2, "y1": mid[1] - side / 2, "x2": mid[0] + side / 2, "y2": mid[1] + side / 2,
                "annopoints": {"point": _struct_array(points, ["x", "y", "id", "is_visible"])},
                "scale": person["scale"], "objpos": {"x": person["center"][0], "y": person["center"][1]}}
        rects = [rect, {"scale": 2.0, "objpos": {"x": 10.0, "y": 10.0}}] if n == 1 else [rect]
        annolist.append({"image": {"name": person["image"]},
                         "annorect": _struct_array(rects, ["x1", "y1", "x2", "y2", "annopoints", "scale", "objpos"])})
        img_train.append(1)
        expected.append((xy - 1, 0.6 * side * np.sqrt(2), person))
    annolist.append({"image": {"name": "000000001.jpg"},
                     "annorect": _struct_array([{"scale": 1.5, "objpos": {"x": 5.0, "y": 5.0}}], ["scale", "objpos"])})
    img_train.append(0)
    release = {"annolist": _struct_array(annolist, ["image", "annorect"]),
               "img_train": np.array([img_train], dtype=np.float64),
               "single_person": np.array([[np.array([[1]])] for _ in annolist] , dtype=object)}
    scipy.io.savemat(os.path.join(root, "mpii_human_pose_v1_u12_1.mat"), {"RELEASE": release})
    os.makedirs(os.path.join(root, "mpii_valid_pred", "data"))
    scipy.io.savemat(os.path.join(root, "mpii_valid_pred", "data", "detections.mat"),
                     {"RELEASE_img_index": np.array([[2, 4]]), "RELEASE_person_index": np.array([[1, 1]])})
    return expected


def write_jhmdb_official(root, frames=3):
    """An official-layout JHMDB folder built from the real COCO-style sample: class "catch", its three videos.

    Each video gets ``frames`` frames: the real first frame copied, with the real joints shifted right by t px in
    frame t (so frames differ), stored 1-based as pos_img (2 x 15 x T). The puppet masks are synthetic: the filled
    convex hull of the frame's joints. Split 1 puts videos 0 and 2 in train and video 1 in test. Returns
    {video: pos_img 0-based [T, 15, 2]}.
    """
    with open(os.path.join(JHMDB_FIXTURE, "test_jhmdb_sub1.json")) as f:
        data = json.load(f)
    images = {im["id"]: im for im in data["images"]}
    expected = {}
    split_lines = []
    for k, ann in enumerate(data["annotations"]):
        video = images[ann["image_id"]]["file_name"].split("/")[0]
        xy0 = np.asarray(ann["keypoints"], np.float64).reshape(15, 3)[:, :2]
        pos = np.stack([xy0 + [t, 0] for t in range(frames)])  # T x 15 x 2, 0-based
        expected[video] = pos
        for sub in ("Rename_Images", "joint_positions", "puppet_mask"):
            os.makedirs(os.path.join(root, sub, "catch", video), exist_ok=True)
        for t in range(frames):
            shutil.copy(os.path.join(JHMDB_FIXTURE, video, "00001.png"),
                        os.path.join(root, "Rename_Images", "catch", video, f"{t + 1:05d}.png"))
        scipy.io.savemat(os.path.join(root, "joint_positions", "catch", video, "joint_positions.mat"),
                         {"pos_img": (pos + 1).transpose(2, 1, 0), "scale": np.ones((1, frames)),
                          "viewpoint": "E"})
        masks = np.zeros((240, 320, frames), np.uint8)
        for t in range(frames):
            hull = cv2.convexHull(np.round(pos[t]).astype(np.int32))
            masks[:, :, t] = cv2.fillConvexPoly(np.ascontiguousarray(masks[:, :, t]), hull, 1)
        scipy.io.savemat(os.path.join(root, "puppet_mask", "catch", video, "puppet_mask.mat"), {"part_mask": masks})
        split_lines.append(f"{video}.avi {2 if k == 1 else 1} \n")
    os.makedirs(os.path.join(root, "splits"))
    with open(os.path.join(root, "splits", "catch_test_split1.txt"), "w") as f:
        f.writelines(split_lines)
    return expected


def build_model(preset, **overrides):
    """(config, graph, total cost) of a training graph of ``preset`` with ``KEY=value`` overrides."""
    cfg = build_config(preset, [f"{k}={v!r}" for k, v in overrides.items()])
    graph = tf.Graph()
    with graph.as_default():
        model = CPMModel.from_config(cfg, Geometry.from_config(cfg))
        inputs = [tf.compat.v1.placeholder(s.dtype, s.shape, s.name) for s in model.inputs()]
        with TowerContext("", is_training=True):
            cost = model.build_graph(*inputs)
    return cfg, graph, cost


def stick_person():
    """An upright stick figure with round numbers (x, y px): [K, 3] with every joint visible."""
    gt = np.zeros((NUM_JOINTS, 3))
    pos = {"head_top": (50, 0), "neck": (50, 20),
           "right_shoulder": (40, 20), "right_elbow": (40, 40), "right_wrist": (40, 60),
           "left_shoulder": (60, 20), "left_elbow": (60, 40), "left_wrist": (60, 60),
           "right_hip": (44, 60), "right_knee": (44, 90), "right_ankle": (44, 120),
           "left_hip": (56, 60), "left_knee": (56, 90), "left_ankle": (56, 120)}
    for name, xy in pos.items():
        gt[JOINT_INDEX[name]] = (*xy, VISIBLE)
    return gt
