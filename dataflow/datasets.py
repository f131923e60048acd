"""Dataset selection by name: ``--data NAME --datadir DIR --split S`` of every script ends here.

Each dataset names its reader and its default training and evaluation splits; its records carry the keypoint spec of
the joints its files store (cpm.keypoints; a model of another spec maps them, dataflow.records.map_records). Reader
options come from the config's READER group.
"""
import os
from dataclasses import dataclass
from typing import Callable

from cpm.config import get_config
from cpm.errors import UserError
from dataflow.coco import read_coco
from dataflow.jhmdb import read_jhmdb
from dataflow.lsp import read_lsp
from dataflow.mpii import read_mpii
from dataflow.tfrecord import read_tfrecord

#: The real LSP sample shipped with the repository (LSP training images im0001-im0700 and their joints, in the
#: original release layout). Default training data and test fixture.
SAMPLE_LSP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample", "lsp")


@dataclass(frozen=True)
class Dataset:
    """A supported dataset.

    Attributes:
        name: the --data name.
        read: (datadir, split, reader config group) -> list of PersonRecord.
        train_split, eval_split: splits used when --split is not given.
    """

    name: str
    read: Callable
    train_split: str
    eval_split: str


DATASETS = {d.name: d for d in (
    Dataset("lsp", lambda d, s, o: read_lsp(d, s), "train", "test"),
    Dataset("mpii", lambda d, s, o: read_mpii(d, s), "train", "val"),
    Dataset("jhmdb", lambda d, s, o: read_jhmdb(d, s, o.JHMDB_FRAME_STRIDE), "train", "test"),
    Dataset("coco", lambda d, s, o: read_coco(d, s, o.COCO_MIN_KEYPOINTS, o.COCO_SKIP_CROWD), "train",
            "val"),
    Dataset("tfrecord", lambda d, s, o: read_tfrecord(d, s), "train", "test"),
)}


def load_records(name, datadir, split, reader=None):
    """Person records of one dataset split.

    Args:
        name: a key of DATASETS.
        datadir: the dataset folder in its release layout (a file for tfrecord).
        split: a split name the dataset knows.
        reader: the config's READER group (None: the defaults).
    Returns:
        list of dataflow.records.PersonRecord.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name].read(datadir, split, reader if reader is not None else get_config().READER)


def selections(data, datadirs, splits, role="train"):
    """Pair repeated ``--data/--datadir/--split`` flags into (name, dir, split) triples.

    Args:
        data: dataset names (None: ["lsp"]); datadirs: one per name, or None (only for lsp: the shipped sample);
        splits: one for all names or one per name, or None (each dataset's default split for ``role``).
        role: "train" or "eval".
    """
    data = data or ["lsp"]
    if datadirs and len(datadirs) != len(data):
        raise UserError(f"give one --datadir per --data ({len(data)} --data, {len(datadirs)} --datadir)")
    if splits and len(splits) not in (1, len(data)):
        raise UserError(f"give one --split, or one per --data ({len(data)} --data, {len(splits)} --split)")
    datadirs = datadirs or [None] * len(data)
    splits = splits if splits and len(splits) == len(data) else (splits or [None]) * len(data)
    triples = []
    for name, datadir, split in zip(data, datadirs, splits, strict=True):
        if name not in DATASETS:
            raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
        if datadir is None and name != "lsp":
            raise UserError(f"--datadir is required for --data {name}")
        default = DATASETS[name].train_split if role == "train" else DATASETS[name].eval_split
        triples.append((name, datadir or SAMPLE_LSP_DIR, split or default))
    return triples


def load_selection(triples, reader=None):
    """Records of every (name, dir, split) triple, concatenated."""
    records = []
    for name, datadir, split in triples:
        records += load_records(name, datadir, split, reader)
    return records
