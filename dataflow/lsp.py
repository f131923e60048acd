"""Reader for Leeds Sports Pose (LSP) and LSP extended (LSPET) in their original release layouts.

Layout of a folder DIR:
    DIR/joints.mat          variable ``joints``: LSP (3, 14, N) or LSPET (14, 3, N)
    DIR/images/im0001.jpg   image k (1-based; 4 digits for LSP, 5 for LSPET) belongs to joints entry k - 1

The two arrays differ in more than their shape:
    LSP   (3, 14, N): rows x, y, and an *occlusion* flag (1 = hidden, 0 = visible); every joint is annotated.
    LSPET (14, 3, N): columns x, y, and a *visibility* flag (1 = visible, 0 = not annotated; such joints sit at
                      x <= 0 or y <= 0).
Coordinates are 0-based pixels as stored. Standard splits of the 2000-image LSP release: train = im0001-im1000,
test = im1001-im2000. LSPET is a training set only. A split may also be a range of image numbers, ``A-B`` (1-based,
inclusive): ``1-800`` and ``801-1000`` split LSP's training half into our training and validation people.

Left and right are the person's own (person-centric) in both files, also for people seen from behind: in each, about
a quarter of the people with both shoulders and hips annotated have the right shoulder and hip on the image's right,
and looking at upright ones (LSP im0039, im0109, im0366, im0587, im0732; LSPET im00303, im07096) shows people with
their backs to the camera. So the two are combined as they are.
"""
import os
import re

import numpy as np

from cpm.errors import UserError
from cpm.joints import OCCLUDED, UNANNOTATED, VISIBLE
from cpm.keypoints import LSP14
from dataflow.records import PersonRecord, center_scale_from_joints, check_some_images_exist, load_mat, with_frames

LSP_TRAIN_SIZE = 1000  # images im0001-im1000 are LSP's training half, im1001-im2000 its test half
LSP_RELEASE_SIZE = 2000
SPLITS = ("train", "test", "all")  # or an image-number range "A-B"
_RANGE = re.compile(r"^(\d+)-(\d+)$")
#: The joints of joints.mat in file order (lsp_dataset/README.txt); records hold them in lsp14's order
FILE_ORDER = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
              "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top")


def read_joints_mat(path):
    """Read an LSP/LSPET joints.mat.

    Returns:
        (joints float32 [N, 14, 3] in LSP joint order with visibility 0/1/2, layout name "lsp" or "lspet").
    Raises:
        UserError: missing or unreadable file, no ``joints`` variable, or a shape that is neither layout.
    """
    if not os.path.isfile(path):
        raise UserError(f"{path} not found (LSP layout: DIR/joints.mat and DIR/images/imNNNN.jpg)")
    arr = with_frames(np.asarray(load_mat(path, ["joints"])["joints"], dtype=np.float64))
    if arr.ndim == 3 and arr.shape[:2] == (3, 14):
        joints = arr.transpose(2, 1, 0).copy()  # N x 14 x 3
        joints[:, :, 2] = np.where(arr[2].T == 1, OCCLUDED, VISIBLE)
        return joints.astype(np.float32), "lsp"
    if arr.ndim == 3 and arr.shape[:2] == (14, 3):
        joints = arr.transpose(2, 0, 1).copy()  # N x 14 x 3
        joints[:, :, 2] = np.where(arr[:, 2, :].T == 1, VISIBLE, UNANNOTATED)
        return joints.astype(np.float32), "lspet"
    raise UserError(f"{path}: 'joints' has shape {arr.shape}; expected LSP (3, 14, N) or LSPET (14, 3, N)")


def split_indices(split, num_entries, layout, datadir):
    """0-based joints entries of a split. Raises UserError for an unknown split or one the folder does not hold."""
    found = _RANGE.match(split)
    if found:
        first, last = int(found.group(1)), int(found.group(2))
        if not 1 <= first <= last <= num_entries:
            raise UserError(f"LSP split {split!r}: need 1 <= A <= B <= {num_entries} (the entries of "
                            f"{datadir}/joints.mat)")
        return np.arange(first - 1, last)
    if split not in SPLITS:
        raise UserError(f"unknown LSP split {split!r}; choose from {', '.join(SPLITS)} or an image range A-B")
    if split == "all" or (layout == "lspet" and split == "train"):
        return np.arange(num_entries)
    if layout == "lspet":
        raise UserError(f"{datadir} is LSPET, a training set: it has no {split!r} split (use train or all)")
    if split == "train":
        return np.arange(min(num_entries, LSP_TRAIN_SIZE))
    indices = np.arange(LSP_TRAIN_SIZE, min(num_entries, LSP_RELEASE_SIZE))
    if len(indices) == 0:
        raise UserError(f"split 'test' (im1001-im2000) is not in {datadir}: its joints.mat has {num_entries} "
                        f"entries (the full LSP release has {LSP_RELEASE_SIZE})")
    return indices


def _image_pattern(images_dir):
    """'im%04d.jpg' or 'im%05d.jpg', whichever names the folder's images use."""
    for pattern in ("im%04d.jpg", "im%05d.jpg"):
        if os.path.isfile(os.path.join(images_dir, pattern % 1)):
            return pattern
    raise UserError(f"{images_dir} has neither im0001.jpg nor im00001.jpg (LSP layout: DIR/images/imNNNN.jpg)")


def read_lsp(datadir, split="all"):
    """Person records of an LSP or LSPET folder.

    Args:
        datadir: the folder holding joints.mat and images/.
        split: "train", "test", "all" or an image-number range "A-B" (1-based, inclusive).
    Returns:
        list of PersonRecord, one per image of the split, in file order; centre and scale come from the joints
        (center_scale_from_joints). Entries with fewer than two annotated joints (a handful in LSPET) are skipped.
    Raises:
        UserError: missing folder or joints.mat, no image of the split; wrong shape; a split the folder does not hold.
    """
    if not os.path.isdir(datadir):
        raise UserError(f"LSP folder {datadir} does not exist")
    joints, layout = read_joints_mat(os.path.join(datadir, "joints.mat"))
    indices = split_indices(split, len(joints), layout, datadir)
    images_dir = os.path.join(datadir, "images")
    pattern = _image_pattern(images_dir)
    model_joints = joints[:, [FILE_ORDER.index(n) for n in LSP14.names]]  # N x 14 x 3 in lsp14's order
    records = []
    for i in indices:
        path = os.path.join(images_dir, pattern % (i + 1))
        try:
            center, scale = center_scale_from_joints(model_joints[i])
        except ValueError:
            continue
        records.append(PersonRecord(path, model_joints[i], center, scale, layout, joint_set=LSP14))
    if not records:
        raise UserError(f"split {split!r} of {datadir} has no usable person")
    return check_some_images_exist(records, f"split {split!r} of {datadir}")
