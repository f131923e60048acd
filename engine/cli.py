"""The scripts' one command-line vocabulary: every flag that more than one script takes is defined here once.

Naming: ``--load`` a model to use, ``--preset`` / ``--config`` the settings, ``--data/--datadir/--split`` a dataset
selection, ``--precision`` fp32 | bf16, ``--out`` a script's main output and ``--out-<kind>`` each further output
(older spellings stay as aliases).
"""
import logging
import os

from cpm.checkpoint import ROOT, SHIPPED_MODEL
from cpm.config import PRESETS
from cpm.errors import UserError
from cpm.files import make_dirs, make_parent
from cpm.precision import PRECISIONS
from dataflow.datasets import DATASETS, load_selection, selections

#: The preset every script uses when none is given: the one `make train` trains.
DEFAULT_PRESET = "cpu"


def add_load_argument(parser):
    """``--load``: a model to use, the shipped one when not given (cpm.checkpoint.resolve_checkpoint)."""
    parser.add_argument("--load", help="run directory, checkpoint prefix or exported weights.npz (default: the "
                                       f"shipped model, {os.path.relpath(SHIPPED_MODEL, ROOT)})")


def add_config_arguments(parser, preset=DEFAULT_PRESET, preset_help=None):
    """``--preset`` (one of the preset table's names) and ``--config KEY=VALUE ...``. ``preset=None``: no default.

    An unknown preset is left to cpm.config.build_config, whose one-line error names the choices (argparse's own
    ``choices`` would print its usage block)."""
    default = f" (default {preset})" if preset else ""
    parser.add_argument("--preset", default=preset, metavar="|".join(PRESETS),
                        help=(preset_help or "config preset") + default)
    add_config_argument(parser)


def add_config_argument(parser, help="config overrides"):
    """``--config KEY=VALUE ...`` alone, for scripts whose settings do not depend on a preset; repeated, the lists
    add up."""
    parser.add_argument("--config", nargs="*", action="extend", default=[], metavar="KEY=VALUE", help=help)


def add_precision_argument(parser):
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32 | bf16 (oneDNN mixed precision on CPUs with AVX512-BF16/AMX)")


def add_verbose_argument(parser):
    """``--verbose``: tensorpack's log (layer table, variables restored, ...) on the console; without it a tool prints
    only what a person reads (what was loaded and written, the scores) and warnings."""
    parser.add_argument("--verbose", action="store_true", help="also print tensorpack's log (layers, variables)")


def _warnings_only(record):
    return record.levelno >= logging.WARNING


def apply_verbosity(args):
    """Hold tensorpack's log to warnings unless ``args.verbose``: a filter on its logger, which holds whether or not
    tensorpack is imported yet (importing it to set its level would cost the LiteRT prediction path seconds, and
    tensorpack sets its level to INFO when imported)."""
    logger = logging.getLogger("tensorpack")
    logger.removeFilter(_warnings_only)
    if not getattr(args, "verbose", False):
        logger.addFilter(_warnings_only)


def add_output_argument(parser, kind, help, aliases=()):
    """``--out-<kind>`` (``kind`` None: ``--out``), with older spellings as aliases; the value lands in
    ``args.out_<kind>`` (``args.out``)."""
    flag = "--out" if kind is None else f"--out-{kind}"
    parser.add_argument(flag, *aliases, dest=flag[2:].replace("-", "_"), help=help)


def prepare_outputs(args, folders=()):
    """Make the folders every output flag given (``--out``, ``--out-<kind>``) writes into, as ``mkdir -p`` would:
    the parent of a file, or the folder itself for the attributes named in ``folders`` (e.g. ``"out_plots"``).
    Where that is impossible (no permission, a file in the way), one line naming the flag and the folder; this runs
    before any model is loaded, so a bad path costs nothing."""
    for dest, path in sorted(vars(args).items()):
        if (dest == "out" or dest.startswith("out_")) and isinstance(path, str) and path:
            flag = f"--{dest.replace('_', '-')} {path}"
            make_dirs(path, flag) if dest in folders else make_parent(path, flag)


def parse_scales(text):
    """``--scales`` text, e.g. "0.7,1.0,1.3", as a tuple of positive zooms; a one-line error otherwise."""
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise UserError(f"--scales {text!r}: expected comma-separated numbers such as 0.7,1.0,1.3") from None
    if not scales or min(scales) <= 0:
        raise UserError(f"--scales {text!r}: scales must be positive")
    return scales


def add_dataset_arguments(parser, role="train"):
    """A single ``--data/--datadir/--split`` selection; without --datadir, lsp means the shipped sample."""
    parser.add_argument("--data", default="lsp", choices=list(DATASETS), help="dataset name (default: lsp)")
    parser.add_argument("--datadir", default=None,
                        help="dataset folder in its release layout, or a TFRecord file (default for lsp: the "
                             "repository's sample)")
    parser.add_argument("--split", default=None,
                        help=f"split name (default: the dataset's {role} split: "
                             + ", ".join(f"{d.name} {d.train_split if role == 'train' else d.eval_split}"
                                         for d in DATASETS.values()) + ")")
    parser.set_defaults(dataset_role=role)


def records_from_args(args, reader=None):
    """Records of the dataset selected by add_dataset_arguments' flags; sets args.datadir and args.split to the
    folder and split used."""
    (triple,) = selections([args.data], [args.datadir] if args.datadir else None,
                           [args.split] if args.split else None, args.dataset_role)
    args.datadir, args.split = triple[1], triple[2]
    return load_selection([triple], reader)


def selection_text(dataset, path, split):
    """A data selection (dataset, folder, split) as a model card names it: the folder by its name alone (a user's
    paths differ), the split, and the reader where the folder's name does not say it: "lspet all (lsp format)"."""
    folder = os.path.basename(os.path.normpath(path))
    return f"{folder} {split}" + ("" if folder == dataset else f" ({dataset} format)")
