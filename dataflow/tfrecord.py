"""Pose TFRecords in the schema of the MARS pose trainer (docs/references.md): one tf.train.Example per image,
normalised coordinates, several people per image (docs/data.md, "TFRecords").

Writing (``write_tfrecord``) groups records by image and stores, per image:
    image/encoded       the source file's bytes unchanged (JPEG, or PNG for a PNG source: re-encoding would lose
                        pixels), image/format saying which; image/height, image/width, image/filename, image/id
    image/object/*      per person: the crop box (centre +- 100 x scale px, the box our records are cut around),
                        normalised; area (person mask, else box); the records' joints (their own set's) as parts/x,
                        parts/y (x / width, y / height) and parts/v (0 unannotated, 1 occluded, 2 visible)
    image/extra         JSON {"joint_set": name, "keypoints": spec (a set that is not built in), "objects":
                        [{center, scale, head_size, dataset, mask}]}: the record fields the schema has no key for,
                        exact (mask as a COCO RLE)
Reading (``read_tfrecord``) gives one record per object. Files from other writers need only the schema's keys: their
parts are of the joint set named in image/extra, or of the one with that many joints (14 lsp14, 15 jhmdb15,
16 mpii16, 17 coco17); centre and scale then come from the box. Images stay inside the file: records
point at them with a TFRecordImage.
"""
import functools
import json
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from cpm.errors import BadSample, UserError
from cpm.files import staged
from cpm.joints import UNANNOTATED
from cpm.keypoints import BUILTIN, COCO17, JHMDB15, LSP14, MPII16, KeypointSpec
from dataflow.masks import RLEMask
from dataflow.records import SCALE_UNIT_PX, PersonRecord, center_scale_from_box, center_scale_from_joints

#: The set of a file that names none, by its parts per object (14: lsp14's order, as our files before keypoint specs)
JOINT_SETS_BY_SIZE = {js.num_joints: js for js in (LSP14, JHMDB15, MPII16, COCO17)}
#: Set names of files from before keypoint specs
_OLD_NAMES = {"model": LSP14}
_HEADER = struct.Struct("<Q")  # a TFRecord entry: uint64 length, uint32 crc, data, uint32 crc


@dataclass(frozen=True)
class TFRecordImage:
    """The image of the Example at byte ``offset`` (``length`` bytes) of a TFRecord file; str() is its file name."""

    path: str
    offset: int
    length: int
    filename: str

    def read_bytes(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.length)
        if len(data) != self.length:
            raise BadSample(f"{self}: the file is cut short before byte {self.offset + self.length}")
        return _features(_parse(data, self.path))["image/encoded"][0]

    def __str__(self):
        return f"{self.path}:{self.filename}"


def read_image_bytes(image):
    """Encoded bytes of a record's image: a file path or an object with read_bytes()."""
    if hasattr(image, "read_bytes"):
        return image.read_bytes()
    try:
        with open(image, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadSample(f"{image}: cannot read ({e.strerror})") from None


def _parse(data, path):
    import tensorflow as tf

    try:
        return tf.train.Example.FromString(data)
    except Exception:  # protobuf's DecodeError
        raise UserError(f"{path} holds an entry that is not a tf.train.Example (corrupt or not a pose TFRecord)") \
            from None


def _features(example):
    """{key: list of values} of an Example."""
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[key] = list(getattr(feature, kind).value) if kind else []
    return out


def iter_entries(path):
    """Yield (offset, length) of every entry's data in a TFRecord file, checking the framing."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset < size:
            header = f.read(12)
            if len(header) < 12:
                raise UserError(f"{path} is truncated at byte {offset}")
            (length,) = _HEADER.unpack(header[:8])
            start = offset + 12
            if start + length + 4 > size:
                raise UserError(f"{path} is truncated or not a TFRecord file (entry at byte {offset} claims "
                                f"{length} bytes)")
            yield start, length
            offset = start + length + 4
            f.seek(offset)


def tfrecord_files(datadir, split):
    """A file is read whole (its split is itself); a folder holds <split>.tfrecord or <split>-*-of-* shards."""
    if os.path.isfile(datadir):
        return [datadir]
    if not os.path.isdir(datadir):
        raise UserError(f"TFRecord {datadir} does not exist")
    names = sorted(n for n in os.listdir(datadir) if n == f"{split}.tfrecord" or n.startswith(f"{split}.tfrecord-")
                   or n.startswith(f"{split}-"))
    if not names:
        raise UserError(f"{datadir} has no {split}.tfrecord or {split}-NNNNN-of-NNNNN shards")
    return [os.path.join(datadir, n) for n in names]


def read_tfrecord(datadir, split="train"):
    """Person records of a pose TFRecord file, or of a split's shards in a folder (module docstring)."""
    records = []
    for path in tfrecord_files(datadir, split):
        with open(path, "rb") as f:
            for offset, length in iter_entries(path):
                f.seek(offset)
                records += _records(_features(_parse(f.read(length), path)), path, offset, length)
    if not records:
        raise UserError(f"{datadir} holds no annotated person")
    return records


def _records(feat, path, offset, length):
    """Records of one Example's features."""
    def one(key, default=None):
        values = feat.get(key, [])
        return values[0] if values else default

    filename = one("image/filename", b"").decode() or f"entry@{offset}"
    width, height = one("image/width"), one("image/height")
    count = one("image/object/count", 0)
    if not width or not height:
        raise UserError(f"{path}: {filename} lacks image/width or image/height")
    xs, ys, vs = (np.asarray(feat.get(f"image/object/parts/{k}", []), np.float64) for k in "xyv")
    if count == 0:
        return []
    if not (len(xs) == len(ys) == len(vs)) or len(xs) % count:
        raise UserError(f"{path}: {filename} has {len(xs)} parts/x, {len(ys)} parts/y, {len(vs)} parts/v for "
                        f"{count} objects")
    extra = _our_extra(one("image/extra", b""))
    k = len(xs) // count
    joint_set = _joint_set(extra, path) or JOINT_SETS_BY_SIZE.get(k)
    if joint_set is None or joint_set.num_joints != k:
        raise UserError(f"{path}: {filename} has {k} parts per object; known joint sets have "
                        f"{sorted(JOINT_SETS_BY_SIZE)}")
    parts = np.stack([xs * width, ys * height, np.clip(vs, 0, 2)], axis=1).reshape(count, k, 3)
    objects = extra.get("objects") if len(extra.get("objects") or []) == count else [{}] * count
    image = TFRecordImage(path, offset, length, filename)
    boxes = [feat.get(f"image/object/bbox/{s}", []) for s in ("xmin", "ymin", "xmax", "ymax")]
    records = []
    for i in range(count):
        joints = parts[i]
        if (joints[:, 2] == UNANNOTATED).all():
            continue
        obj = objects[i]
        if "center" in obj and "scale" in obj:
            center, scale = obj["center"], obj["scale"]
        elif all(len(b) == count for b in boxes) and boxes[2][i] > boxes[0][i] and boxes[3][i] > boxes[1][i]:
            x0, y0, x1, y1 = (b[i] for b in boxes)
            center, scale = center_scale_from_box(x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height)
        else:
            try:
                center, scale = center_scale_from_joints(joints)
            except ValueError:
                continue
        mask = obj.get("mask")
        records.append(PersonRecord(image, joints, center, scale, obj.get("dataset", "tfrecord"),
                                    head_size=obj.get("head_size"),
                                    mask=RLEMask(mask["counts"], *mask["size"]) if mask else None,
                                    joint_set=joint_set))
    return records


def _joint_set(extra, path):
    """The keypoint spec image/extra names: its own JSON form, a built-in's name, or our files' name from before
    keypoint specs; None (a set another writer's text does not make usable is not trusted either)."""
    if isinstance(extra.get("keypoints"), dict):
        try:
            return _parsed_spec(json.dumps(extra["keypoints"], sort_keys=True), path)
        except UserError:
            return None
    name = extra.get("joint_set")
    return BUILTIN.get(name) or _OLD_NAMES.get(name)


@functools.lru_cache(maxsize=16)
def _parsed_spec(text, path):
    """One spec object per distinct JSON form in a file (every image of it stores the same), so that its people map
    through one cached joint map."""
    return KeypointSpec.from_dict(json.loads(text), source=path)


def _our_extra(raw):
    """image/extra as written by write_tfrecord, or {}: the schema makes the field free-form, so other writers' text
    (or JSON of another shape) is ignored rather than trusted."""
    try:
        extra = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return extra if isinstance(extra, dict) else {}


def _image_format(data, name):
    if data[:3] == b"\xff\xd8\xff":
        return b"JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"PNG"
    raise UserError(f"image {name} is neither JPEG nor PNG")


def example_of(image, records):
    """The tf.train.Example of one image and the records of the people in it."""
    import tensorflow as tf

    data = read_image_bytes(image)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if decoded is None:
        raise BadSample(f"{image}: {'not a decodable image' if data else 'empty file'}")
    height, width = decoded.shape[:2]
    size = np.array([width, height], np.float64)
    boxes, areas, objects = [], [], []
    for r in records:
        half = SCALE_UNIT_PX * r.scale / 2
        lo, hi = (r.center - half) / size, (r.center + half) / size
        boxes.append((lo[0], hi[0], lo[1], hi[1]))
        mask = r.mask.to_rle() if r.mask is not None else None
        if mask is not None:
            if (mask.height, mask.width) != (height, width):
                raise UserError(f"{image}: person mask is {mask.height}x{mask.width}, image {height}x{width}")
            areas.append(mask.area() / (width * height))
        else:
            areas.append((hi[0] - lo[0]) * (hi[1] - lo[1]))
        objects.append({"center": [float(v) for v in r.center], "scale": r.scale, "head_size": r.head_size,
                        "dataset": r.dataset,
                        "mask": {"counts": mask.counts, "size": [height, width]} if mask is not None else None})
    spec = records[0].joint_set
    if any(r.joint_set.names != spec.names for r in records):
        raise UserError(f"{image}: its people hold joints of different sets ({spec.name}, ...)")
    joints = np.stack([r.joints for r in records])  # P x K x 3
    floats = lambda v: tf.train.Feature(float_list=tf.train.FloatList(value=list(map(float, v))))  # noqa: E731
    ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=list(map(int, v))))  # noqa: E731
    strings = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=list(v)))  # noqa: E731
    name = str(image).encode()
    feature = {
        "image/id": strings([name]), "image/filename": strings([name]), "image/encoded": strings([data]),
        "image/height": ints([height]), "image/width": ints([width]), "image/colorspace": strings([b"RGB"]),
        "image/channels": ints([3]), "image/format": strings([_image_format(data, image)]),
        "image/extra": strings([json.dumps({"joint_set": spec.name, "objects": objects,
                                            **({} if BUILTIN.get(spec.name) is spec else
                                               {"keypoints": spec.to_dict()})}).encode()]),
        "image/object/count": ints([len(records)]),
        "image/object/area": floats(areas),
        "image/object/id": strings([str(i).encode() for i in range(len(records))]),
        **{f"image/object/bbox/{k}": floats([b[i] for b in boxes]) for i, k in enumerate(("xmin", "xmax", "ymin",
                                                                                           "ymax"))},
        "image/object/parts/x": floats((joints[:, :, 0] / width).ravel()),
        "image/object/parts/y": floats((joints[:, :, 1] / height).ravel()),
        "image/object/parts/v": ints(joints[:, :, 2].ravel()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_tfrecord(records, out, unreadable=None):
    """Write records to one TFRecord file, one Example per image (first-seen order). Returns the image count.

    Written under a temporary name beside ``out`` and renamed at the end (cpm.files.staged), so an interrupted
    conversion or a full disk leaves no half file. An image that cannot be read raises BadSample naming it, or with
    ``unreadable`` (a dict) is left out and noted there as {image: why}.
    """
    import tensorflow as tf

    by_image = OrderedDict()
    for r in records:
        by_image.setdefault(r.image, []).append(r)
    written = 0
    with staged(out) as partial, tf.io.TFRecordWriter(partial) as writer:
        for image, people in by_image.items():
            try:
                example = example_of(image, people)
            except BadSample as e:
                if unreadable is None:
                    raise
                unreadable[str(image)] = e.why(image)
                continue
            writer.write(example.SerializeToString())
            written += 1
        if not written:
            raise UserError(f"{out}: none of the {len(by_image)} images could be read; nothing written")
    return written
