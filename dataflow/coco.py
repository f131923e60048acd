"""Reader for COCO keypoint JSON, and for other datasets shipped in the same format (the COCO-style JHMDB JSON).

Layouts of a folder DIR for a split S (the first that exists is used):
    DIR/annotations/person_keypoints_S.json + images in DIR/S/       (the COCO 2017 release: S = train2017, val2017)
    DIR/S.json or DIR/annotations/S.json + images in DIR/images/ or DIR/
Aliases: train -> train2017, val and test -> val2017 (COCO's test set has no public keypoints).

Each annotation becomes one record of the file's keypoints: COCO's own 17 (cpm.keypoints.COCO17), or the keypoints
and skeleton a user's file (CVAT's or Label Studio's COCO keypoint export, say) declares in its category, any number
of them (category_spec); a model of another spec maps them (cpm.joints.joint_map). Visibility keeps COCO's 0/1/2,
the crop is centred on the person box (centre = box middle, scale = longer side / 200 px), and the person mask comes
from the annotation's polygons or run-length encoding. Crowd regions and people with fewer than
READER.COCO_MIN_KEYPOINTS labelled keypoints are skipped.
"""
import os

import numpy as np

from cpm.errors import UserError
from cpm.keypoints import COCO17, KeypointSpec, twin_permutation
from dataflow.masks import PolygonMask, RLEMask
from dataflow.records import (
    PersonRecord,
    center_scale_from_box,
    center_scale_from_joints,
    first_existing,
    load_json,
    locate,
)

SPLIT_ALIASES = {"train": "train2017", "val": "val2017", "test": "val2017"}


def coco_split_files(datadir, split):
    """(annotation JSON path, image folders to search) of a COCO-layout split."""
    if not os.path.isdir(datadir):
        raise UserError(f"COCO folder {datadir} does not exist")
    s = SPLIT_ALIASES.get(split, split)
    candidates = [os.path.join(datadir, "annotations", f"person_keypoints_{s}.json"),
                  os.path.join(datadir, f"{split}.json"), os.path.join(datadir, "annotations", f"{split}.json")]
    path = first_existing(candidates, f"annotations of split {split!r}")
    return path, [os.path.join(datadir, s), os.path.join(datadir, "images", s), os.path.join(datadir, "images"),
                  datadir]


def category_spec(category, path):
    """The keypoint spec of a COCO-format category: COCO's coco17 for its 17 keypoints, else a set of the category's
    own keypoint names and skeleton (1-based index pairs, as annotation tools write them), named after the category
    and its size (``hand21``), left/right twins from the names where both exist, PCK by the joints' box, judged by
    COCO's keypoint AP with the default OKS sigma, without part stages."""
    names = list(category.get("keypoints"))
    if names == list(COCO17.names):
        return COCO17
    twins = twin_permutation(names, None)  # a left_X without its right_X is its own (no mirror twin)
    edges = category.get("skeleton") or []
    if not all(isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(k, int) and 1 <= k <= len(names)
                                                                    for k in e) for e in edges):
        raise UserError(f"{path}: category {category.get('name')!r} has a skeleton edge outside its "
                        f"{len(names)} keypoints (1-based pairs)")
    return KeypointSpec.from_dict({
        "name": f"{category.get('name', 'keypoints')}{len(names)}", "joints": names,
        "flip_pairs": [[names[i], names[j]] for i, j in enumerate(twins) if i < j],
        "skeleton": [[names[a - 1], names[b - 1]] for a, b in edges], "metric": "ap",
        "person": category.get("name") == "person"}, source=path)


def read_coco_json(path, image_dirs, joint_set=None, dataset="coco", min_keypoints=1, skip_crowd=True):
    """Person records of a COCO-format keypoint file.

    Args:
        path: the JSON file (keys images, annotations, categories).
        image_dirs: folders searched in order for each image's file_name.
        joint_set: the keypoints' joint set, which the file's category must list in its order; None: the category's
            own (category_spec). The category is "person" where the file has one with keypoints, else the first
            with keypoints.
        dataset: name stored in the records.
        min_keypoints: people with fewer labelled keypoints (visibility > 0) are skipped.
        skip_crowd: skip annotations with iscrowd = 1.
    Returns:
        list of PersonRecord, in annotation order.
    Raises:
        UserError: missing keys or files, keypoint names that differ from the joint set, wrong keypoint lengths.
    """
    data = load_json(path)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise UserError(f"{path} has no {key!r}: not a COCO keypoint file")
    with_keypoints = [c for c in data["categories"] if c.get("keypoints")]
    person = [c for c in with_keypoints if c.get("name") == "person"] or with_keypoints
    if not person:
        raise UserError(f"{path} has no category with keypoints")
    joint_set = joint_set or category_spec(person[0], path)
    if tuple(person[0]["keypoints"]) != joint_set.names:
        raise UserError(f"{path}: keypoint names {person[0]['keypoints']} are not the {joint_set.name} joint set "
                        f"{list(joint_set.names)}")
    images = {im["id"]: im for im in data["images"]}
    found = {}
    records = []
    for ann in data["annotations"]:
        if ann.get("category_id") != person[0]["id"] or (skip_crowd and ann.get("iscrowd", 0)):
            continue
        kps = np.asarray(ann.get("keypoints", []), dtype=np.float64)
        if kps.size != 3 * joint_set.num_joints:
            raise UserError(f"{path}: annotation {ann.get('id')} has {kps.size} keypoint values; expected "
                            f"{3 * joint_set.num_joints}")
        kps = kps.reshape(-1, 3)
        kps[:, 2] = np.clip(np.round(kps[:, 2]), 0, 2)
        if int((kps[:, 2] > 0).sum()) < min(min_keypoints, joint_set.num_joints):  # a small set: all of its own
            continue
        joints = kps
        image = images.get(ann["image_id"])
        if image is None:
            raise UserError(f"{path}: annotation {ann.get('id')} refers to image {ann['image_id']}, which is not "
                            f"listed")
        path_of_image = locate(image["file_name"], image_dirs, found)
        place = _center_scale(ann, joints)
        if place is None:
            continue
        records.append(PersonRecord(path_of_image, joints, *place, dataset,
                                    mask=_mask(ann.get("segmentation"), image), joint_set=joint_set))
    if not records:
        raise UserError(f"{path} has no usable person (min_keypoints={min_keypoints})")
    return records


def _center_scale(ann, joints):
    """From the person box; from the joints' extent if the box is missing or empty; None if neither exists."""
    box = ann.get("bbox")
    if box and len(box) == 4 and box[2] > 0 and box[3] > 0:
        return center_scale_from_box(*box)
    try:
        return center_scale_from_joints(joints)
    except ValueError:
        return None


def _mask(segmentation, image):
    """A mask reference for COCO's segmentation field: polygons (list) or RLE (dict); None when absent."""
    h, w = int(image.get("height", 0)), int(image.get("width", 0))
    if not segmentation or not (h and w):
        return None
    if isinstance(segmentation, list):
        polygons = tuple(tuple(p) for p in segmentation if len(p) >= 6)  # a polygon needs three points
        return PolygonMask(polygons, h, w) if polygons else None
    counts = segmentation["counts"]
    return RLEMask(counts if isinstance(counts, str) else tuple(counts), h, w)


def read_coco(datadir, split, min_keypoints=1, skip_crowd=True):
    """Person records of a COCO keypoint split (see the module docstring for the layouts)."""
    path, image_dirs = coco_split_files(datadir, split)
    return read_coco_json(path, image_dirs, None, "coco", min_keypoints, skip_crowd)
