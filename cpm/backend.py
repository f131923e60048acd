"""Which of TensorFlow's CPU backends runs our graphs: oneDNN, Eigen, and either under XLA's auto-clustering.

The fastest differs by CPU and by task (docs/benchmarks.md): oneDNN has won the training step on every CPU measured,
AVX2-only ones included, but on an AVX2-only CPU it runs one crop through the inference graph 12x slower than Eigen.
So the probe measures both, and a run trains on the training choice while prediction and evaluation run the
prediction one. TensorFlow reads the switches (``TF_ENABLE_ONEDNN_OPTS``, ``TF_XLA_FLAGS``) when it is imported, so
the choice is made before that import: ``cpm/__init__`` applies the one ``CPM_BACKEND`` names, else this machine's
measured prediction choice (a small JSON cache, no TensorFlow), else none (TensorFlow's own default: oneDNN on CPUs
with AVX512_VNNI, AVX512_BF16 or AMX, Eigen elsewhere); a script that wants another one (train.py's training choice,
``--backend``, or a resumed run's recorded backend) re-executes itself with it (``reexec_with``).

The cache is keyed on what decides the answer: CPU vendor, family, model, stepping and flags, the TensorFlow version
and the precision; a new machine, a new TensorFlow or another precision measures again (engine.speed.probe).
Nothing here imports TensorFlow.
"""
import hashlib
import json
import os
import sys
import time
from importlib import metadata

#: Environment of each backend. XLA's auto-clustering on the CPU needs its global-jit flag besides the level.
_XLA = "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"
BACKENDS = {
    "onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    "eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "xla": {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_XLA_FLAGS": _XLA},
    "xla-eigen": {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_XLA_FLAGS": _XLA},
}
#: What a cluster's workers train on unless --backend names one (each worker would otherwise measure alone)
DEFAULT = "onednn"
#: running()'s name for a process that applied none: TensorFlow's own choice at import
UNAPPLIED = "tensorflow-default"
#: bf16 is oneDNN's auto mixed precision rewrite: the other backends would run it in fp32
BF16_BACKENDS = ("onednn",)
ENV = "CPM_BACKEND"  # the user's choice for any script (train.py's --backend, likewise)
APPLIED = "CPM_BACKEND_APPLIED"  # what this process (and a re-executed one) runs: set by apply
_DECIDED = "CPM_BACKEND_DECIDED"  # "name:why" a script decided before re-executing itself (reexec_with)
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tensorpack-cpm",
                     "backends.json")


def candidates(precision, predict=False):
    """The backends worth measuring in ``precision``; for prediction without XLA's, which compile every new batch
    shape at its first use, a cost of each cold start that timing after a warm-up does not see."""
    names = BF16_BACKENDS if precision == "bf16" else tuple(BACKENDS)
    return tuple(n for n in names if not (predict and "TF_XLA_FLAGS" in BACKENDS[n]))


def machine_key(precision, cpuinfo="/proc/cpuinfo"):
    """What decides the fastest backend, as a short string: CPU vendor, family, model, stepping, a digest of its
    flags, the TensorFlow version and the precision (the model name alone says "AMD EPYC" for Zen 3 and Zen 4)."""
    try:
        with open(cpuinfo) as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        first = ""
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    flags = hashlib.sha1(" ".join(sorted(fields.get("flags", "").split())).encode()).hexdigest()[:10]
    try:
        tf_version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        tf_version = "none"
    return "/".join([fields.get("vendor_id", "?"), fields.get("cpu family", "?"), fields.get("model", "?"),
                     fields.get("stepping", "?"), flags, f"tf{tf_version}", precision])


def _read_cache(path=None):
    try:
        with open(path or CACHE) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again


def cached(precision, path=None):
    """The cache entry of this machine and ``precision``: {"choice", "seconds": {backend: s/step}, "measured",
    "predict": {"choice", "seconds": {backend: s/person}}}, or None (an entry from before prediction was measured
    too is measured again)."""
    entry = _read_cache(path).get(machine_key(precision))
    ok = isinstance(entry, dict) and entry.get("choice") in BACKENDS and isinstance(entry.get("predict"), dict) \
        and entry["predict"].get("choice") in BACKENDS
    return entry if ok else None


def remember(precision, seconds, predict, path=None):
    """Store the measured train-step seconds of each backend and the fastest as this machine's training choice, and
    ``predict``'s seconds per person and their fastest as its prediction choice; returns the training choice."""
    path = path or CACHE
    choice = min(seconds, key=seconds.get)
    data = _read_cache(path)
    data[machine_key(precision)] = {"choice": choice, "seconds": seconds,
                                    "predict": {"choice": min(predict, key=predict.get), "seconds": predict},
                                    "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: the choice holds for this run and is measured again next time
    return choice


def running():
    """The backend this process runs: the one applied before TensorFlow's import, else UNAPPLIED."""
    return os.environ.get(APPLIED) or UNAPPLIED


def apply(name):
    """Set the environment of backend ``name`` for a TensorFlow not imported yet (the caller checks that). A switch
    the user set themselves (``TF_ENABLE_ONEDNN_OPTS``, ``TF_XLA_FLAGS``) is overridden: ``CPM_BACKEND`` is the one
    knob."""
    os.environ[APPLIED] = name
    os.environ.pop("TF_XLA_FLAGS", None)
    os.environ.update(BACKENDS[name])


def apply_at_import():
    """cpm/__init__'s step: the backend a re-executing script asked for (reexec_with), else the one ``CPM_BACKEND``
    names, else the fp32 prediction choice measured on this machine, else none: TensorFlow's own default. Never
    measures: a probe would slow every start."""
    name = os.environ.get(APPLIED) or os.environ.get(ENV)
    if name not in BACKENDS:
        entry = cached("fp32")
        name = entry["predict"]["choice"] if entry else None
    if name:
        apply(name)


def reexec_with(name, why=""):
    """Run this script again from the start with backend ``name`` (TensorFlow is already imported here with another):
    the same interpreter, flags, arguments and environment but the backend's switches, and the decision and ``why``
    for ``decided`` to return, so that the new process does not decide again (a cache it could not write would have
    it measure again, and perhaps choose otherwise). Does not return."""
    apply(name)
    os.environ[_DECIDED] = f"{name}:{why}"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


def decided():
    """(backend, why) this process was re-executed with (reexec_with) and runs, else None; once per process (child
    processes do not inherit it)."""
    name, _, why = os.environ.pop(_DECIDED, "").partition(":")
    return (name, why) if name in BACKENDS and name == running() else None
