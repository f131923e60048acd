"""The person record every reader yields, the centre/scale rules, and file lookup shared by the readers."""
import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import scipy.io

from cpm.errors import UserError
from cpm.joints import UNANNOTATED, joint_map
from cpm.keypoints import LSP14, KeypointSpec

#: MPII's unit of person size: ``scale`` is the person's height in px divided by this.
SCALE_UNIT_PX = 200.0


@dataclass
class PersonRecord:
    """One annotated person.

    Attributes:
        image: path of the image file, or an object with ``read_bytes()`` and a readable ``str()`` for images stored
            inside a container (dataflow.tfrecord.TFRecordImage); dataflow.images.read_image takes both.
        joints: float32 [K, 3] in the order of ``joint_set``; x, y in 0-based original image px; visibility
            0 unannotated / 1 occluded / 2 visible (cpm.joints).
        center: float32 [2], person centre in original px; the crop is cut around it.
        scale: person size in units of SCALE_UNIT_PX (MPII convention: height / 200 px).
        dataset: name of the reader that made the record.
        head_size: px, for PCKh (MPII); None where the dataset has no head box.
        mask: the person's mask as a reference that loads on demand (dataflow.masks: ``load()`` gives uint8 [H, W]
            in original px, 1 on the person), or None where the dataset has none.
        joint_set: the cpm.keypoints.KeypointSpec of ``joints``: the dataset's own (map_records brings them into a
            model's).
    """

    image: str
    joints: np.ndarray
    center: np.ndarray
    scale: float
    dataset: str
    head_size: Optional[float] = None
    mask: Any = None
    joint_set: KeypointSpec = LSP14

    def __post_init__(self):
        self.joints = np.array(self.joints, dtype=np.float32)
        self.center = np.asarray(self.center, dtype=np.float32)
        if self.joints.shape != (self.joint_set.num_joints, 3):
            raise ValueError(f"{self.image}: joints must be [{self.joint_set.num_joints}, 3] ({self.joint_set.name}), "
                             f"got {self.joints.shape}")
        self.joints[self.joints[:, 2] == UNANNOTATED, :2] = 0.0  # whatever a file stores there: no position
        if self.center.shape != (2,):
            raise ValueError(f"{self.image}: center must be [2], got {self.center.shape}")
        self.scale = float(self.scale)


def map_records(records, spec):
    """``records`` with their joints in the order of ``spec`` (cpm.joints.joint_map: by name, or derived as declared;
    a joint the data does not give is unannotated), as a model of ``spec`` trains on them and is scored against them.
    Records already of ``spec``'s joints come back as they are; the list keeps its order and length."""
    out = []
    for r in records:
        m = joint_map(r.joint_set, spec)
        out.append(r if m.identity else dataclasses.replace(r, joints=m.map_joints(r.joints), joint_set=spec))
    return out


def model_people(records, spec):
    """map_records, less the people left without an annotated joint of ``spec`` (COCO people with only a face, for an
    lsp14 model): what a model of ``spec`` trains on and is scored against. Readers delivered each dataset's own
    joints, so these people are dropped here, before a validation split or an epoch's step count sees them, as the
    readers dropped them when they mapped every dataset onto lsp14 themselves."""
    return [r for r in map_records(records, spec) if (r.joints[:, 2] != UNANNOTATED).any()]


def describe_mapping(records, spec):
    """One line per joint set of ``records`` that is not ``spec``'s (cpm.joints.JointMap.describe), in first-seen
    order; none when every record already has the model's joints."""
    seen = {}
    for r in records:
        seen.setdefault(id(r.joint_set), r.joint_set)
    maps = [joint_map(s, spec) for s in seen.values()]
    return [m.describe() for m in maps if not m.identity]


def center_scale_from_joints(joints):
    """Person centre and scale from the extent of the annotated joints.

    The centre is the middle of the annotated joints' bounding box, and the scale makes the box's longer side
    SCALE_UNIT_PX * scale px, so a normalised crop (DATA.TARGET_DIST) shows it about 234 px long out of 368,
    as the CPM release's LSP preparation does (its genJSON.m caps the joints' extent at 368 - 64 px). Using the
    longer side keeps lying or stretched people inside the crop.

    Args:
        joints: float [K, 3] with visibility in the third column.
    Returns:
        (center float32 [2], scale float).
    Raises:
        ValueError: fewer than two annotated joints, or all at one point.
    """
    xy = joints[joints[:, 2] != UNANNOTATED, :2]
    if len(xy) < 2:
        raise ValueError("fewer than two annotated joints")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    extent = float((hi - lo).max())
    if extent <= 0:
        raise ValueError("annotated joints all lie at one point")
    return ((lo + hi) / 2).astype(np.float32), extent / SCALE_UNIT_PX


def center_scale_from_box(x, y, w, h):
    """Centre and scale of a person box (x, y, w, h in px): the box's middle, and its longer side / SCALE_UNIT_PX,
    the rule center_scale_from_joints applies to the joints' extent."""
    if not (w > 0 and h > 0):
        raise ValueError(f"empty box {w} x {h}")
    return np.array([x + w / 2, y + h / 2], np.float32), max(w, h) / SCALE_UNIT_PX


def first_existing(paths, what):
    """The first of ``paths`` that exists. Raises UserError listing them all when none does."""
    for path in paths:
        if os.path.exists(path):
            return path
    raise UserError(f"{what} not found; looked for " + ", ".join(paths))


def load_json(path):
    """Parse a JSON file, raising UserError naming it if it is unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None


def load_mat(path, variables, **options):
    """The named variables of a MATLAB file (scipy.io.loadmat ``options`` pass through).

    Raises:
        UserError naming the file: missing, unreadable, or lacking one of ``variables``.
    """
    try:
        mat = scipy.io.loadmat(path, variable_names=list(variables), **options)
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except Exception as e:  # scipy raises several types for a corrupt or non-MATLAB file
        raise UserError(f"{path} is not a readable MATLAB file: {e}") from None
    found = sorted(k for k in mat if not k.startswith("__"))
    for name in variables:
        if name not in mat:
            raise UserError(f"{path} has no variable {name!r} (found: {found})")
    return mat


def with_frames(arr):
    """An [A, B, N] MATLAB array with N = 1 comes back [A, B] (MATLAB drops trailing singletons): restore it."""
    return arr[:, :, None] if arr.ndim == 2 else arr


def locate(name, folders, found):
    """Path of image ``name`` in the first of ``folders`` that holds it, memoised in the dict ``found``."""
    if name not in found:
        found[name] = first_existing([os.path.join(d, name) for d in folders], f"image {name}")
    return found[name]


def check_some_images_exist(records, where):
    """Raise a UserError if no image of ``records`` (a reader's split) exists: a wrong folder or layout. One missing
    file is kept as a record, to cost that file only: training skips it as a bad sample, evaluation scores its people
    wrong and conversion leaves it out, each naming it."""
    if records and not any(os.path.isfile(str(r.image)) for r in records):
        raise UserError(f"none of the {len({str(r.image) for r in records})} images of {where} exists (the first: "
                        f"{records[0].image}): a wrong folder or layout?")
    return records


def check_all_images_exist(records, what):
    """Raise a UserError naming the first image of ``records`` that is not there (images inside a container such as
    a TFRecord are not checked here): for the validation people, whom every epoch report scores, at the start of a
    run rather than at the end of its first epoch."""
    missing = next((r.image for r in records if isinstance(r.image, str) and not os.path.isfile(r.image)), None)
    if missing is not None:
        raise UserError(f"{what} image {missing} is missing: the epoch report scores every {what} person")

