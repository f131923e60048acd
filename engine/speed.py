"""How fast the CPM trains and infers here: the timing behind ``scripts/benchmark.py train`` and the backend probe
that picks the fastest of cpm.backend's backends for this machine.

    python -m engine.speed --precision fp32 [--preset cpu] [--batch 16] [--steps 5] [--warmup 2] [--no-predict]  # JSON

Each backend must be measured in a process of its own (TensorFlow reads its switches at import): ``probe`` runs this
module once per backend, with that backend's environment.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from cpm import backend
from cpm.config import build_config, learned_parts, part_layers
from cpm.errors import UserError

#: the probe's measurement: the network a default run trains, long enough to pass the first steps' kernel choices
PROBE = dict(preset="cpu", batch=16, steps=4, warmup=2)


def step_seconds(preset="cpu", precision="fp32", batch=16, steps=10, warmup=2, overrides=(), predict=True):
    """Seconds per training step (forward, backward, update) and per inference batch of ``preset``'s network, on real
    batches of the shipped sample fed from memory, after ``warmup`` steps, in this process's backend.

    Returns:
        {"train": s/step, "inference": s/batch (the training graph's forward), "predict": s/person (one crop through
        the inference graph, _predict_seconds; without ``predict``, None), "parameters": int, "parts": the learned
        part layers in words, "input_size": int}.
    """
    import tensorflow as tf  # noqa: PLC0415  (the caller chose the backend before this import)
    from tensorpack.tfutils.tower import TowerContext  # noqa: PLC0415

    from cpm import names  # noqa: PLC0415
    from cpm.model import CPMModel, count_parameters  # noqa: PLC0415
    from cpm.native_log import held_native_log  # noqa: PLC0415
    from cpm.session import session_config  # noqa: PLC0415
    from dataflow.datasets import SAMPLE_LSP_DIR, load_records  # noqa: PLC0415
    from dataflow.geometry import Geometry  # noqa: PLC0415
    from dataflow.mapper import make_mapper  # noqa: PLC0415

    cfg = build_config(preset, [f"TRAIN.BATCH_SIZE={batch}", "TRAIN.NUM_WORKERS=0", *overrides])
    geometry = Geometry.from_config(cfg)
    mapper = make_mapper(load_records("lsp", SAMPLE_LSP_DIR, "train"), geometry, cfg.AUG, seed=0)
    data = [np.stack(x) for x in zip(*[mapper(i) for i in range(batch)], strict=True)]
    model = CPMModel.from_config(cfg, geometry)
    with tf.Graph().as_default():
        inputs = [tf.compat.v1.placeholder(s.dtype, s.shape, s.name) for s in model.inputs()]
        with TowerContext("", is_training=True):
            cost = model.build_graph(*inputs)
        with held_native_log():  # the first device lookup here: the cuInit error of a machine without a GPU
            train_op = model.optimizer().minimize(cost)
        params = count_parameters()
        graph = tf.compat.v1.get_default_graph()
        final = [graph.get_tensor_by_name(n + ":0") for n in names.predict_outputs(learned_parts(cfg))]
        feed = dict(zip(inputs, data, strict=True))
        times = {}
        with tf.compat.v1.Session(config=session_config(precision)) as sess:  # what the trainer runs with
            sess.run(tf.compat.v1.global_variables_initializer())
            times["train"] = _timed(sess, train_op, feed, steps, warmup)
            times["inference"] = _timed(sess, final, {inputs[0]: data[0], inputs[3]: data[3]}, steps, warmup)
    times["predict"] = _predict_seconds(model, cfg, data, precision, steps, warmup) if predict else None
    parts = part_layers(cfg.MODEL.PART_STAGES, cfg.MODEL.PART_HEAD)
    return {**times, "parameters": params, "parts": parts, "input_size": geometry.input_size}


def _predict_seconds(model, cfg, data, precision, steps, warmup):
    """Seconds per person of the inference graph (batch norm on its moving statistics, which the backends fuse into
    the convolutions) on one crop at a time, as predict.py and the Python API run it. On an AVX2-only CPU oneDNN runs
    that one crop 12x slower than Eigen while winning the training step (docs/benchmarks.md)."""
    import tensorflow as tf  # noqa: PLC0415
    from tensorpack.tfutils.tower import TowerContext  # noqa: PLC0415

    from cpm import names  # noqa: PLC0415
    from cpm.session import session_config  # noqa: PLC0415

    with tf.Graph().as_default():
        inputs = [tf.compat.v1.placeholder(s.dtype, s.shape, s.name) for s in model.inputs()]
        with TowerContext("", is_training=False):
            model.build_graph(*inputs)
        graph = tf.compat.v1.get_default_graph()
        final = [graph.get_tensor_by_name(n + ":0") for n in names.predict_outputs(learned_parts(cfg))]
        feed = {inputs[0]: data[0][:1], inputs[3]: data[3][:1]}
        with tf.compat.v1.Session(config=session_config(precision)) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return _timed(sess, final, feed, steps, warmup)


def _timed(sess, fetch, feed, steps, warmup):
    """Seconds per ``sess.run(fetch, feed)``, the mean of ``steps`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        sess.run(fetch, feed)
    start = time.perf_counter()
    for _ in range(steps):
        sess.run(fetch, feed)
    return (time.perf_counter() - start) / steps


def measure_in(name, precision, env=None, predict=True, **probe):
    """step_seconds in a new process on backend ``name`` (``env``: more environment, e.g. ONEDNN_MAX_CPU_ISA)."""
    p = {**PROBE, **probe}
    run_env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", backend.ENV, backend.APPLIED)}
    run_env.update(backend.BACKENDS[name], **{backend.APPLIED: name}, **(env or {}))
    command = [sys.executable, "-m", "engine.speed", "--precision", precision, "--preset", p["preset"], "--batch",
               str(p["batch"]), "--steps", str(p["steps"]), "--warmup", str(p["warmup"]),
               *([] if predict else ["--no-predict"]), "--config", *p.get("overrides", ())]
    done = subprocess.run(command, capture_output=True, text=True, env=run_env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"measuring backend {name} failed: {last}")
    return json.loads(lines[-1])


def probe(precision, say=print):
    """Measure every candidate backend's training step and one-crop prediction here (cpm.backend.candidates),
    remember the fastest of each for this machine and return (training choice, {backend: s/step})."""
    seconds, predict = {}, {}
    for name in backend.candidates(precision):
        say(f"backend probe: timing {name} ({PROBE['steps']} steps of the {PROBE['preset']} network)...")
        t = measure_in(name, precision, predict=name in backend.candidates(precision, predict=True))
        seconds[name] = t["train"]
        if t["predict"] is not None:
            predict[name] = t["predict"]
    choice = backend.remember(precision, seconds, predict)
    say(f"backend for prediction and evaluation here: {min(predict, key=predict.get)} ("
        + ", ".join(f"{n} {1000 * t:.1f}" for n, t in sorted(predict.items(), key=lambda kv: kv[1])) + " ms/person)")
    return choice, seconds


def run_backend(requested, saved, precision, cluster=False, say=print):
    """The backend a training run uses, and why (a few words): ``requested`` (--backend, or CPM_BACKEND) unless
    "auto"; else the run's own (``saved``, config.json's, so a resumed run keeps it); bf16 runs on oneDNN (its mixed
    precision is oneDNN's); a cluster's workers run DEFAULT (each worker would measure alone); else this
    machine's recorded choice, else measured now (probe) and recorded."""
    if requested and requested != "auto":
        if requested not in backend.BACKENDS:
            raise UserError(f"--backend {requested}: choose from auto, {', '.join(backend.BACKENDS)}")
        return requested, "asked for"
    if saved in backend.BACKENDS:
        return saved, "the run's own"
    if precision == "bf16":
        return backend.BF16_BACKENDS[0], "bf16 is oneDNN's mixed precision"
    if cluster:
        return backend.DEFAULT, "a cluster's default; --backend to choose"
    entry = backend.cached(precision)
    if entry is None:
        choice, seconds = probe(precision, say)
        return choice, "the fastest measured now: " + _times(seconds)
    return entry["choice"], f"the fastest measured on this machine ({entry['measured']}): " + _times(entry["seconds"])


def _times(seconds):
    return ", ".join(f"{n} {s:.3f}" for n, s in sorted(seconds.items(), key=lambda kv: kv[1])) + " s/step"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--config", nargs="*", default=[])
    parser.add_argument("--no-predict", dest="predict", action="store_false", help="skip the one-crop prediction")
    a = parser.parse_args()
    print(json.dumps(step_seconds(a.preset, a.precision, a.batch, a.steps, a.warmup, a.config, a.predict)))


if __name__ == "__main__":
    main()
