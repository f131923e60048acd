"""Reader for JHMDB (Jhuang et al., ICCV 2013): the official release layout and the COCO-style JSON.

Official layout of a folder DIR (the release's separate archives unpacked side by side):
    DIR/Rename_Images/<class>/<video>/%05d.png               frames, 1-based numbering
    DIR/joint_positions/<class>/<video>/joint_positions.mat  pos_img: 2 x 15 x T, 1-based px (also scale, viewpoint)
    DIR/puppet_mask/<class>/<video>/puppet_mask.mat          part_mask: H x W x T person mask (optional archive)
    DIR/splits/<class>_test_split<k>.txt                     lines "<video>.avi 1|2": 1 = train, 2 = test; k = 1..3
Splits: train1..train3, test1..test3 (train and test mean split 1), all (every video with joints). Every
READER.JHMDB_FRAME_STRIDE-th frame of a video is used, starting with the first. The puppet annotations place every
joint, hidden or not, and carry no visibility flag: all joints are marked visible. The head joint is the head's
centre (cpm.keypoints.JHMDB15). Centre and scale come from the joints' extent, as for LSP. The frame's puppet mask
travels with its record when the puppet_mask archive is present.

COCO-style JSON layout (15 keypoints in the release's order, 0-based px as COCO stores them, person boxes):
    DIR/<split>.json or DIR/annotations/<split>.json, frames at DIR/<file_name> or DIR/images/<file_name>
Aliases: trainK -> train_jhmdb_subK, testK -> test_jhmdb_subK, train -> train_jhmdb_sub1, test -> test_jhmdb_sub1.
"""
import os
import re

import numpy as np

from cpm.errors import UserError
from cpm.joints import VISIBLE
from cpm.keypoints import JHMDB15
from dataflow.coco import read_coco_json
from dataflow.masks import MatFrameMask
from dataflow.records import (
    PersonRecord,
    center_scale_from_joints,
    check_some_images_exist,
    first_existing,
    load_mat,
    with_frames,
)

NUM_SPLITS = 3
TRAIN, TEST = 1, 2  # the split files' labels


def parse_split(split):
    """("train" | "test" | "all", k) of a split name such as "train2"."""
    if split == "all":
        return "all", 0
    m = re.fullmatch(r"(train|test)([1-3]?)", split)
    if not m:
        raise UserError(f"unknown JHMDB split {split!r}; choose from train1-3, test1-3, train, test, all")
    return m.group(1), int(m.group(2) or 1)


def read_split_files(splits_dir, k):
    """{(class, video): 1 | 2} from every ``<class>_test_split<k>.txt`` in ``splits_dir``."""
    if not os.path.isdir(splits_dir):
        raise UserError(f"{splits_dir} not found (JHMDB layout: DIR/splits/<class>_test_split<k>.txt)")
    labels = {}
    pattern = re.compile(rf"(.+)_test_split{k}\.txt")
    for name in sorted(os.listdir(splits_dir)):
        m = pattern.fullmatch(name)
        if not m:
            continue
        with open(os.path.join(splits_dir, name)) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("1", "2") or not parts[0].endswith(".avi"):
                    raise UserError(f"{name} line {n}: expected '<video>.avi 1|2', got {line.strip()!r}")
                labels[(m.group(1), parts[0][:-4])] = int(parts[1])
    if not labels:
        raise UserError(f"{splits_dir} has no *_test_split{k}.txt files")
    return labels


def read_pos_img(path):
    """Joints of a video: float64 [T, 15, 2], 0-based px, from a joint_positions.mat's pos_img (2 x 15 x T,
    1-based)."""
    pos = with_frames(np.asarray(load_mat(path, ["pos_img"])["pos_img"], dtype=np.float64))
    if pos.shape[:2] != (2, JHMDB15.num_joints):
        raise UserError(f"{path}: pos_img has shape {pos.shape}; expected (2, 15, T)")
    return pos.transpose(2, 1, 0) - 1.0


def read_jhmdb_official(datadir, split, frame_stride=1):
    """Person records, one per sampled frame, of an official-layout JHMDB folder (module docstring)."""
    which, k = parse_split(split)
    joints_root = os.path.join(datadir, "joint_positions")
    if not os.path.isdir(joints_root):
        raise UserError(f"{joints_root} not found (JHMDB layout: DIR/joint_positions/<class>/<video>/"
                        f"joint_positions.mat)")
    videos = sorted((c, v) for c in os.listdir(joints_root) if os.path.isdir(os.path.join(joints_root, c))
                    for v in os.listdir(os.path.join(joints_root, c)))
    if which != "all":
        labels = read_split_files(os.path.join(datadir, "splits"), k)
        wanted = TRAIN if which == "train" else TEST
        videos = [cv for cv in videos if labels.get(cv) == wanted]
    records = []
    for cls, video in videos:
        pos = read_pos_img(os.path.join(joints_root, cls, video, "joint_positions.mat"))
        mask_path = os.path.join(datadir, "puppet_mask", cls, video, "puppet_mask.mat")
        has_mask = os.path.isfile(mask_path)
        for t in range(0, len(pos), frame_stride):
            image = os.path.join(datadir, "Rename_Images", cls, video, f"{t + 1:05d}.png")
            joints = np.concatenate([pos[t], np.full((len(pos[t]), 1), VISIBLE)], axis=1)
            try:
                center, scale = center_scale_from_joints(joints)
            except ValueError:  # a degenerate frame: all joints at one point
                continue
            records.append(PersonRecord(image, joints, center, scale, "jhmdb",
                                        mask=MatFrameMask(mask_path, "part_mask", t) if has_mask else None,
                                        joint_set=JHMDB15))
    if not records:
        raise UserError(f"split {split!r} of {datadir} has no annotated video")
    return check_some_images_exist(records, f"split {split!r} of {datadir}")


def read_jhmdb_json(datadir, split):
    """Person records of a COCO-style JHMDB JSON split (module docstring)."""
    which, k = parse_split(split) if re.fullmatch(r"(train|test)[1-3]?", split) else (None, 0)
    stem = f"{which}_jhmdb_sub{k}" if which else split
    path = first_existing([os.path.join(datadir, f"{stem}.json"), os.path.join(datadir, "annotations", f"{stem}.json")],
                          f"JHMDB annotations of split {split!r}")
    return read_coco_json(path, [datadir, os.path.join(datadir, "images")], JHMDB15, "jhmdb")


def read_jhmdb(datadir, split, frame_stride=1):
    """Person records of a JHMDB folder: the official layout if DIR/joint_positions exists, else COCO-style JSON."""
    if not os.path.isdir(datadir):
        raise UserError(f"JHMDB folder {datadir} does not exist")
    if frame_stride < 1:
        raise UserError(f"the JHMDB frame stride must be >= 1, got {frame_stride}")
    if os.path.isdir(os.path.join(datadir, "joint_positions")):
        return read_jhmdb_official(datadir, split, frame_stride)
    return read_jhmdb_json(datadir, split)
