"""Dataset selection by name: ``--data NAME --datadir DIR --split S`` of every script ends here."""
import os

from cpm.errors import UserError
from dataflow.lsp import read_lsp

#: The real LSP sample shipped with the repository (LSP training images im0001-im0700 and their joints, in the
#: original release layout). Default training data and test fixture.
SAMPLE_LSP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample", "lsp")

DATASETS = ("lsp",)


def load_records(name, datadir, split):
    """Person records of one dataset split.

    Args:
        name: one of DATASETS ("lsp" reads both LSP and LSPET layouts).
        datadir: the dataset folder in its release layout.
        split: a split name the dataset knows.
    Returns:
        list of dataflow.records.PersonRecord.
    """
    if name == "lsp":
        return read_lsp(datadir, split)
    raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def selections(data, datadirs, splits, default_split="train"):
    """Pair repeated ``--data/--datadir/--split`` flags into (name, dir, split) triples.

    Args:
        data: dataset names (None: ["lsp"]); datadirs: one per name, or None (only for lsp: the shipped sample);
        splits: one for all names or one per name, or None (``default_split``).
    """
    data = data or ["lsp"]
    if datadirs and len(datadirs) != len(data):
        raise UserError(f"give one --datadir per --data ({len(data)} --data, {len(datadirs)} --datadir)")
    if splits and len(splits) not in (1, len(data)):
        raise UserError(f"give one --split, or one per --data ({len(data)} --data, {len(splits)} --split)")
    datadirs = datadirs or [None] * len(data)
    splits = splits if splits and len(splits) == len(data) else (splits or [default_split]) * len(data)
    triples = []
    for name, datadir, split in zip(data, datadirs, splits, strict=True):
        if datadir is None and name != "lsp":
            raise UserError(f"--datadir is required for --data {name}")
        triples.append((name, datadir or SAMPLE_LSP_DIR, split))
    return triples


def load_selection(triples):
    """Records of every (name, dir, split) triple, concatenated."""
    records = []
    for name, datadir, split in triples:
        records += load_records(name, datadir, split)
    return records


def add_dataset_arguments(parser, default_split="train"):
    """Add a single ``--data/--datadir/--split`` selection; without --datadir, lsp means the shipped sample."""
    parser.add_argument("--data", default="lsp", choices=DATASETS, help="dataset name (default: lsp)")
    parser.add_argument("--datadir", default=None,
                        help="dataset folder in its release layout (default for lsp: the repository's sample)")
    parser.add_argument("--split", default=default_split, help=f"split name (default: {default_split})")


def records_from_args(args):
    """Records of the dataset selected by add_dataset_arguments' flags."""
    return load_selection(selections([args.data], [args.datadir] if args.datadir else None, [args.split]))
