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


def add_dataset_arguments(parser, default_split="train"):
    """Add the ``--data/--datadir/--split`` selection; without --datadir, LSP means the shipped sample."""
    parser.add_argument("--data", default="lsp", choices=DATASETS, help="dataset name (default: lsp)")
    parser.add_argument("--datadir", default=None,
                        help="dataset folder in its release layout (default for lsp: the repository's sample)")
    parser.add_argument("--split", default=default_split, help=f"split name (default: {default_split})")


def records_from_args(args):
    """Records of the dataset selected by add_dataset_arguments' flags."""
    datadir = args.datadir
    if datadir is None:
        if args.data != "lsp":
            raise UserError(f"--datadir is required for --data {args.data}")
        datadir = SAMPLE_LSP_DIR
    return load_records(args.data, datadir, args.split)
