"""Find a model and its run's config from a run directory, a checkpoint prefix or an exported weights file."""
import json
import os

from cpm.config import RENAMED_KEYS, finalize, flatten, get_config
from cpm.errors import UserError

CONFIG_FILE = "config.json"
BEST_CHECKPOINT = "max-val-pcp"  # MaxSaver's name for the checkpoint with the best validation PCP
WEIGHTS_FILE = "weights.npz"  # written by scripts/export.py


def latest_in(run_dir):
    """The newest checkpoint prefix named in tensorpack's ``checkpoint`` file, or None."""
    path = os.path.join(run_dir, "checkpoint")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        first = f.readline()
    if '"' not in first:
        return None
    name = first.split('"')[1]
    return name if os.path.isabs(name) else os.path.join(run_dir, name)


def resolve_checkpoint(path):
    """Locate model weights and the config they were trained with.

    Args:
        path: a run directory (its best-validation checkpoint ``max-val-pcp`` if present, else the latest one),
            a checkpoint prefix such as ``run/model-1200``, or an exported ``weights.npz``. The config is the
            ``config.json`` beside it.
    Returns:
        (weights path for tensorpack's SmartInit, finalized config).
    Raises:
        UserError: nothing loadable at ``path`` or no config.json beside it.
    """
    if os.path.isdir(path):
        run_dir = path
        best = os.path.join(path, BEST_CHECKPOINT)
        weights = best if os.path.isfile(best + ".index") else latest_in(path)
        if weights is None and os.path.isfile(os.path.join(path, WEIGHTS_FILE)):
            weights = os.path.join(path, WEIGHTS_FILE)
        if weights is None:
            raise UserError(f"{path} holds no checkpoint (no max-val-pcp, checkpoint file or {WEIGHTS_FILE})")
    elif path.endswith(".npz") and os.path.isfile(path):
        run_dir, weights = os.path.dirname(os.path.abspath(path)), path
    elif os.path.isfile(path + ".index"):
        run_dir, weights = os.path.dirname(os.path.abspath(path)), path
    elif path.endswith(".index") and os.path.isfile(path):
        run_dir, weights = os.path.dirname(os.path.abspath(path)), path[:-len(".index")]
    else:
        raise UserError(f"--load {path}: not a run directory, checkpoint prefix or .npz weights file")
    return weights, load_run_config(run_dir)


def load_run_config(run_dir):
    """The finalized config saved in ``run_dir/config.json``: keys added since that run keep their defaults, keys
    renamed since take their new names (``cpm.config.RENAMED_KEYS``), keys removed since are skipped."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{path} not found: the model's config must sit beside its weights")
    try:
        with open(path) as f:
            saved = json.load(f)["config"]
    except (ValueError, KeyError) as e:
        raise UserError(f"{path} is not a run config: {e}") from None
    cfg = get_config(saved.get("PRESET", "paper"))
    if "PART_STAGES" not in saved.get("MODEL", {}):
        cfg.MODEL.PART_STAGES = 0  # runs from before part segmentation have no part stages
    known = set(flatten(cfg.to_dict()))
    for key, value in flatten(saved).items():
        key = RENAMED_KEYS.get(key, key)
        if key in known:  # keys this version no longer has are skipped
            cfg.set(key, value)
    return finalize(cfg)
