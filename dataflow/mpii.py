"""Reader for MPII Human Pose (Andriluka et al., CVPR 2014): the official .mat and the widely used JSON conversion.

Official layout of a folder DIR:
    DIR/mpii_human_pose_v1_u12_1.mat (or DIR/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat), struct RELEASE:
        annolist(i).image.name; annolist(i).annorect(p): x1, y1, x2, y2 (head box), scale (person height / 200),
        objpos.x/.y (rough person centre), annopoints.point(j): x, y, id (0..15), is_visible; all px are 1-based
        img_train(i) (1 = training image), single_person{i}
    DIR/images/<name>
    DIR/mpii_valid_pred/data/detections.mat (or DIR/detections.mat): Tompson et al.'s validation people,
        RELEASE_img_index and RELEASE_person_index (1-based), the standard train/val split of the training images.
Splits: trainval (every annotated person of a training image), val (Tompson's 2958 people), train (trainval minus
the images that hold a val person, so no image is in both). Records carry the head size 0.6 x head-box diagonal
(PCKh) and are centred on objpos with the annotated scale, as the CPM release does. is_visible 0 means occluded; a
point without is_visible (a known annotation gap) counts as visible; joints absent from the point list are
unannotated.

JSON conversion (per person: image, joints 16 x 2, joints_vis 16, center [x, y], scale), as in
DIR/annot/<split>.json or DIR/<split>.json (val -> valid.json), images in DIR/images/ or DIR/. The conversion keeps
MATLAB's 1-based px (1 is subtracted here) and only an annotated/not-annotated flag: annotated joints are marked
visible. It has no head boxes, so its records have no head size.
"""
import os

import numpy as np

from cpm.errors import UserError
from cpm.joints import OCCLUDED, UNANNOTATED, VISIBLE
from cpm.keypoints import MPII16
from dataflow.records import PersonRecord, check_some_images_exist, first_existing, load_json, load_mat, locate

HEAD_SIZE_FACTOR = 0.6  # PCKh head size = 0.6 x head-box diagonal (the official evaluation's SC_BIAS)
MAT_SPLITS = ("train", "val", "trainval")
JSON_ALIASES = {"val": "valid"}
ANNOTATION_FILES = ("mpii_human_pose_v1_u12_1.mat", os.path.join("mpii_human_pose_v1_u12_2",
                                                                  "mpii_human_pose_v1_u12_1.mat"))
VALIDATION_FILES = (os.path.join("mpii_valid_pred", "data", "detections.mat"), "detections.mat")


def _list(x):
    """A MATLAB struct array as loaded with squeeze_me: one element comes back bare, none as an empty array (or a
    missing field, None)."""
    if x is None:
        return []
    if isinstance(x, np.ndarray):
        return list(x.ravel())
    return [x]


def _field(struct, name):
    """A struct field, or None if the struct lacks it or it is empty."""
    value = getattr(struct, name, None)
    if value is None or (isinstance(value, np.ndarray) and value.size == 0):
        return None
    return value


def _number(value):
    """A scalar from a MATLAB value that may be a number, a string ('1') or a one-element array."""
    if isinstance(value, np.ndarray):
        value = value.ravel()[0]
    return float(value)


def person_joints(rect):
    """float64 [16, 3] MPII joints (0-based px, visibility 0/1/2) of an annorect; None without annopoints."""
    annopoints = _field(rect, "annopoints")
    points = None if annopoints is None else _field(annopoints, "point")
    if points is None:
        return None
    joints = np.zeros((MPII16.num_joints, 3))
    for point in _list(points):
        j = int(_number(point.id))
        if not 0 <= j < MPII16.num_joints:
            raise UserError(f"MPII point id {j} is not in 0..15")
        visible = _field(point, "is_visible")
        joints[j] = (_number(point.x) - 1, _number(point.y) - 1,
                     VISIBLE if visible is None or _number(visible) == 1 else OCCLUDED)
    return joints


def read_mpii_mat(datadir, split):
    """Person records of the official annotation file (module docstring)."""
    if split not in MAT_SPLITS:
        raise UserError(f"unknown MPII split {split!r} for the official .mat; choose from {', '.join(MAT_SPLITS)}")
    path = first_existing([os.path.join(datadir, f) for f in ANNOTATION_FILES], "MPII annotations")
    release = load_mat(path, ["RELEASE"], struct_as_record=False, squeeze_me=True)["RELEASE"]
    annolist, img_train = _list(release.annolist), np.atleast_1d(release.img_train).ravel()
    if len(annolist) != len(img_train):
        raise UserError(f"{path}: {len(annolist)} annolist entries but {len(img_train)} img_train flags")
    val = set()
    if split != "trainval":
        vpath = first_existing([os.path.join(datadir, f) for f in VALIDATION_FILES],
                               "Tompson et al.'s validation split (mpii_valid_pred.zip; or use split trainval)")
        v = load_mat(vpath, ["RELEASE_img_index", "RELEASE_person_index"], squeeze_me=True)
        images, people = (np.atleast_1d(v[k]).astype(int).tolist() for k in ("RELEASE_img_index",
                                                                               "RELEASE_person_index"))
        if len(images) != len(people):
            raise UserError(f"{vpath}: {len(images)} image indices but {len(people)} person indices")
        val = set(zip(images, people, strict=True))
    val_images = {i for i, _ in val}
    records = []
    for i, entry in enumerate(annolist, 1):
        if img_train[i - 1] != 1 or (split == "train" and i in val_images):
            continue
        image = os.path.join(datadir, "images", str(entry.image.name))
        for p, rect in enumerate(_list(_field(entry, "annorect")), 1):
            if split == "val" and (i, p) not in val:
                continue
            joints = person_joints(rect)
            objpos, scale = _field(rect, "objpos"), _field(rect, "scale")
            if joints is None or objpos is None or scale is None or (joints[:, 2] == UNANNOTATED).all():
                continue
            head = HEAD_SIZE_FACTOR * float(np.linalg.norm([_number(rect.x2) - _number(rect.x1),
                                                            _number(rect.y2) - _number(rect.y1)]))
            records.append(PersonRecord(image, joints, (_number(objpos.x) - 1, _number(objpos.y) - 1),
                                        _number(scale), "mpii", head_size=head, joint_set=MPII16))
    return _checked(records, datadir, split)


def read_mpii_json(path, image_dirs):
    """Person records of a JSON conversion file (module docstring)."""
    people = load_json(path)
    if not isinstance(people, list):
        raise UserError(f"{path}: expected a list of people (image, joints, joints_vis, center, scale)")
    records, found = [], {}
    for n, person in enumerate(people):
        try:
            xy = np.asarray(person["joints"], dtype=np.float64) - 1
            vis = np.asarray(person["joints_vis"], dtype=np.float64)
            center, scale, name = np.asarray(person["center"], np.float64) - 1, person["scale"], person["image"]
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: person {n} lacks or garbles {e}") from None
        if xy.shape != (MPII16.num_joints, 2) or vis.shape != (MPII16.num_joints,):
            raise UserError(f"{path}: person {n} has joints {xy.shape} and joints_vis {vis.shape}; expected (16, 2) "
                            f"and (16,)")
        joints = np.concatenate([xy, np.where(vis > 0, VISIBLE, UNANNOTATED)[:, None]], axis=1)
        image = locate(name, image_dirs, found)
        if (vis > 0).any() and scale > 0:
            records.append(PersonRecord(image, joints, center, scale, "mpii", joint_set=MPII16))
    return records


def read_mpii(datadir, split):
    """Person records of an MPII folder: the split's JSON conversion file if there is one, else the official .mat."""
    if not os.path.isdir(datadir):
        raise UserError(f"MPII folder {datadir} does not exist")
    stem = JSON_ALIASES.get(split, split)
    for path in (os.path.join(datadir, "annot", f"{stem}.json"), os.path.join(datadir, f"{stem}.json")):
        if os.path.isfile(path):
            return _checked(read_mpii_json(path, [os.path.join(datadir, "images"), datadir]), datadir, split)
    return read_mpii_mat(datadir, split)


def _checked(records, datadir, split):
    if not records:
        raise UserError(f"split {split!r} of {datadir} has no annotated person")
    return check_some_images_exist(records, f"split {split!r} of {datadir}")
