"""Find a model and its run's config from a run directory, a checkpoint prefix or an exported weights file."""
import glob
import hashlib
import json
import os
import re
import sys

import numpy as np

from cpm import names
from cpm.config import RENAMED_KEYS, finalize, flatten, get_config
from cpm.errors import UserError
from cpm.files import write_json

#: The model shipped with the repository: what evaluate.py, predict.py and export.py use without --load.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(ROOT, "models", "cpm-lsp")
CONFIG_FILE = "config.json"
def best_checkpoint(metric):
    """The name of a run's best checkpoint by ``metric`` (a keypoint spec's standard figure): max-val-pcp for PCP,
    as every run before keypoint specs; max-val-pckh0.5, max-val-ap, ... for the others."""
    return "max-val-" + metric.replace("@", "")
WEIGHTS_FILE = "weights.npz"  # written by scripts/export.py
LITE_FILE = "model.tflite"  # the same network for LiteRT, beside the weights it was converted from (eval.network)


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


def checkpoints_in(run_dir, prefix="model"):
    """The ``<prefix>-<step>`` checkpoints whose index file is in ``run_dir``, newest (highest step) first, found by
    their files rather than by TensorFlow's ``checkpoint`` state file (which a crash can leave missing or damaged):
    [(path prefix, step)]."""
    found = []
    for name in os.listdir(run_dir) if os.path.isdir(run_dir) else ():
        m = re.fullmatch(rf"{re.escape(prefix)}-(\d+)\.index", name)
        if m:
            found.append((os.path.join(run_dir, name[:-len(".index")]), int(m.group(1))))
    return sorted(found, key=lambda ps: -ps[1])


def checkpoint_damage(path):
    """Why checkpoint ``path`` (a prefix) cannot be restored, or None when it can: every tensor is read back, so
    TensorFlow checks each one against the checksum its index holds, and a data file cut short, a missing one or an
    unreadable index is found here rather than in a traceback mid-restore. Remembered per process while the files'
    sizes and times stay the same (a training start asks about the same checkpoint more than once)."""
    files = sorted(glob.glob(glob.escape(path) + ".*"))
    key = (path, tuple((f, os.path.getsize(f), os.path.getmtime(f)) for f in files if os.path.isfile(f)))
    if key not in _DAMAGE:
        _DAMAGE[key] = _read_back(path)
    return _DAMAGE[key]


_DAMAGE = {}  # checkpoint_damage's answers by (prefix, its files' names, sizes and times)


def _read_back(path):
    """checkpoint_damage's check itself: None, or why reading ``path`` back failed."""
    import tensorflow as tf  # noqa: PLC0415  (reading checkpoints is the only TensorFlow use here)

    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, OSError, ValueError, IndexError, RuntimeError) as e:  # a short read is an IndexError
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return f"{type(e).__name__}: {first[:160]}"
    return None


def resolve_checkpoint(path):
    """Locate model weights and the config they were trained with.

    Args:
        path: a run directory (its best-validation checkpoint ``max-val-*`` if present, else the latest one),
            a checkpoint prefix such as ``run/model-1200``, or an exported ``weights.npz``. The config is the
            ``config.json`` beside it. None: the shipped model (SHIPPED_MODEL), and a line saying so.
    Returns:
        (weights path for tensorpack's SmartInit, finalized config).
    Raises:
        UserError: nothing loadable at ``path`` or no config.json beside it.
    """
    if path is None:
        if not os.path.isdir(SHIPPED_MODEL):
            raise UserError(f"no --load given and no shipped model at {SHIPPED_MODEL}")
        print(f"using the shipped model {os.path.relpath(SHIPPED_MODEL, ROOT)} (--load to use another)", flush=True)
        path = SHIPPED_MODEL
    run_dir, weights = locate_weights(path)
    return weights, load_run_config(run_dir)


def locate_weights(path):
    """(run directory, weights path) of ``path``: a run directory (its best checkpoint, max-val-pcp or another metric's
    best_checkpoint, else its newest checkpoint, else its weights.npz), a checkpoint prefix or an exported
    weights.npz. In a run directory a checkpoint that does not restore (checkpoint_damage) is named in one line on
    stderr and the next is taken, in that order (the best, then the newest intact, then older ones). Raises
    UserError when nothing usable is there, or when an explicit checkpoint prefix is damaged."""
    if os.path.isdir(path):
        run_dir = path
        # its spec's metric's; where the metric changed with the validation data, the newest
        best = sorted(glob.glob(os.path.join(glob.escape(path), "max-val-*.index")), key=os.path.getmtime)
        candidates = [b[:-len(".index")] for b in reversed(best)] + [p for p, _ in checkpoints_in(path)]
        weights = next((c for c in candidates if _usable(c)), None)
        if weights is None and os.path.isfile(os.path.join(path, WEIGHTS_FILE)):
            weights = os.path.join(path, WEIGHTS_FILE)
        if weights is None:
            raise UserError(f"{path} holds no usable checkpoint (no intact max-val-* or model-*, nor {WEIGHTS_FILE})")
    elif path.endswith(".npz") and os.path.isfile(path):
        run_dir, weights = os.path.dirname(os.path.abspath(path)), path
    elif os.path.isfile(path + ".index") or (path.endswith(".index") and os.path.isfile(path)):
        weights = path if os.path.isfile(path + ".index") else path[:-len(".index")]
        run_dir = os.path.dirname(os.path.abspath(weights))
        damage = checkpoint_damage(weights)
        if damage:
            raise UserError(f"--load {path}: the checkpoint is damaged ({damage})")
    else:
        raise UserError(f"--load {path}: not a run directory, checkpoint prefix or .npz weights file")
    return run_dir, weights


def _usable(prefix):
    """Whether a run directory's checkpoint restores; a damaged one is named in one line on stderr."""
    damage = checkpoint_damage(prefix)
    if damage:
        print(f"warning: checkpoint {prefix} is damaged ({damage}); trying the next", file=sys.stderr, flush=True)
    return damage is None


def load_weights(weights):
    """{name: value} of a model's variables, to predict with or to start a new run from: a checkpoint's without its
    step counter, learning rate and optimiser slots (a new run starts at step 0 with a fresh optimiser; an inference
    graph has no place for them), each weight's average in its place where the run averaged its weights
    (TRAIN.EMA_DECAY: _model_values); an exported .npz's with float16 arrays (a shipped model's) widened to float32, so
    they load without a cast warning per variable. For tensorpack's SmartInit."""
    if not str(weights).endswith(".npz"):
        import tensorflow as tf  # noqa: PLC0415  (a checkpoint is read with TensorFlow, which its user has loaded)

        return _model_values(tf.train.load_checkpoint(weights))
    with np.load(weights) as data:
        return {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in data.items()}


# Variables of a training checkpoint that are training state, not the model: left behind when fine-tuning.
_TRAINING_STATE = re.compile(r"(^|/)(global_step|learning_rate|skipped_updates|beta[12]_power)(:0)?$|/(Adam|Adam_1|"
                             r"Momentum)(:0)?$")


def _model_values(reader):
    """{name: value} of the model variables of a checkpoint (``reader``): no training state, and each weight's
    average in its place where the run averaged its weights (cpm.model.AverageWeights)."""
    stored = reader.get_variable_to_shape_map()
    suffix = names.AVERAGE_SUFFIX
    return {n: reader.get_tensor(n + suffix if n + suffix in stored else n) for n in stored
            if not n.endswith(suffix) and not _TRAINING_STATE.search(n)}


def save_weights(path, variables, fp16=False):
    """Write {name: value} as an exported weights.npz, floats as float16 if ``fp16`` (load_weights widens them)."""
    if fp16:
        variables = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in variables.items()}
    np.savez_compressed(path, **variables)


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


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def record_lite_model(folder):
    """Note in ``folder/config.json`` that ``folder/model.tflite`` was converted from ``folder/weights.npz`` (the
    weights' SHA-256), so that lite_model trusts it until the weights change."""
    path = os.path.join(folder, CONFIG_FILE)
    with open(path) as f:
        meta = json.load(f)
    meta["lite"] = {"file": LITE_FILE, "weights_sha256": _digest(os.path.join(folder, WEIGHTS_FILE))}
    write_json(path, meta, indent=2)


def lite_model(weights):
    """The model.tflite beside an exported ``weights`` .npz if config.json records it as converted from exactly
    these weights (record_lite_model), else None: a checkpoint, a folder without it, or weights replaced since."""
    if not str(weights).endswith(".npz"):
        return None
    folder = os.path.dirname(os.path.abspath(weights))
    path = os.path.join(folder, LITE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(os.path.join(folder, CONFIG_FILE)) as f:
            recorded = json.load(f).get("lite", {})
    except (OSError, ValueError):
        return None
    ok = recorded.get("file") == LITE_FILE and recorded.get("weights_sha256") == _digest(weights)
    return path if ok else None
