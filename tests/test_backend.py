"""The CPU backend a run trains on: measured once per machine and precision, recorded, chosen before TensorFlow's
import, kept by a resumed run, and printed."""
import json
import os
import subprocess
import sys

import pytest

from cpm import backend
from cpm.errors import UserError
from engine import speed
from tests.helpers import ROOT, SMALL_CPM

CPU = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {model}\nstepping\t: 1\nmodel name\t: AMD EPYC\n" \
      "flags\t\t: fpu avx2 fma {more}\n\n"


def test_the_cache_is_keyed_on_what_decides_the_answer(tmp_path):
    def key(model=1, more="", precision="fp32"):
        path = tmp_path / f"cpu{model}{more}"
        path.write_text(CPU.format(model=model, more=more))
        return backend.machine_key(precision, str(path))

    # the same "AMD EPYC" name, another model (Zen 3 and Zen 4) or other flags, another precision: another key
    assert len({key(), key(model=17), key(more="avx512f avx512_bf16"), key(precision="bf16")}) == 4
    assert key() == key() and key().startswith("AuthenticAMD/25/1/1/") and "/tf" in key()


def test_remember_the_fastest_and_read_it_back(tmp_path):
    cache = str(tmp_path / "cache" / "backends.json")
    assert backend.cached("fp32", cache) is None
    # the AMD EPYC Zen 3's figures: oneDNN trains fastest and predicts one crop slowest
    predict = {"onednn": 0.322, "xla-eigen": 0.0315, "eigen": 0.025}
    assert backend.remember("fp32", {"onednn": 1.01, "xla-eigen": 1.97, "eigen": 1.85}, predict, cache) == "onednn"
    entry = backend.cached("fp32", cache)
    assert entry["choice"] == "onednn" and entry["seconds"]["eigen"] == 1.85
    assert entry["predict"] == {"choice": "eigen", "seconds": predict}
    assert backend.cached("bf16", cache) is None  # another precision is measured on its own
    assert backend.candidates("fp32", predict=True) == ("onednn", "eigen")  # XLA compiles at each cold start
    with open(cache) as f:
        data = json.load(f)
    del data[backend.machine_key("fp32")]["predict"]
    with open(cache, "w") as f:
        json.dump(data, f)
    assert backend.cached("fp32", cache) is None  # measured before prediction was: measured again
    with open(cache, "w") as f:
        f.write("{damaged")
    assert backend.cached("fp32", cache) is None  # measured again rather than trusted


def test_which_backend_a_run_uses(monkeypatch, tmp_path):
    monkeypatch.setattr(backend, "CACHE", str(tmp_path / "backends.json"))
    measured = []

    def fake_probe(precision, say=print):
        measured.append(precision)
        seconds = {"onednn": 0.5, "xla": 0.9}
        return backend.remember(precision, seconds, {"onednn": 0.4, "eigen": 0.03}, backend.CACHE), seconds

    monkeypatch.setattr(speed, "probe", fake_probe)
    assert speed.run_backend("eigen", "xla", "fp32") == ("eigen", "asked for")
    with pytest.raises(UserError, match="--backend tpu: choose from auto, onednn, eigen, xla, xla-eigen"):
        speed.run_backend("tpu", None, "fp32")
    assert speed.run_backend("auto", "xla", "fp32") == ("xla", "the run's own")
    assert speed.run_backend(None, None, "bf16") == ("onednn", "bf16 is oneDNN's mixed precision")
    assert speed.run_backend(None, None, "fp32", cluster=True)[0] == "onednn" and not measured
    choice, why = speed.run_backend(None, None, "fp32")  # nothing recorded: measured now, once
    assert choice == "onednn" and why == "the fastest measured now: onednn 0.500, xla 0.900 s/step"
    choice, why = speed.run_backend(None, None, "fp32")
    assert choice == "onednn" and why.startswith("the fastest measured on this machine (") and measured == ["fp32"]


def test_a_backend_is_applied_before_tensorflow_reads_it(monkeypatch):
    monkeypatch.setenv("TF_XLA_FLAGS", "--something")
    backend.apply("eigen")
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0" and "TF_XLA_FLAGS" not in os.environ
    assert backend.running() == "eigen"
    backend.apply("xla-eigen")
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"
    backend.apply("onednn")  # the suite's (tests/conftest.py)


def test_prediction_runs_the_prediction_choice_and_training_starts_again_with_its_own(monkeypatch, tmp_path):
    monkeypatch.setattr(backend, "CACHE", str(tmp_path / "backends.json"))
    for name in (backend.ENV, backend.APPLIED, "TF_XLA_FLAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    backend.apply_at_import()  # nothing measured: TensorFlow's own default, and said so, not taken for oneDNN
    assert backend.running() == backend.UNAPPLIED and os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    old = {backend.machine_key("fp32"): {"choice": "onednn", "seconds": {"onednn": 1.0}, "measured": "then"}}
    with open(backend.CACHE, "w") as f:
        json.dump(old, f)
    backend.apply_at_import()  # an entry from before prediction was measured: not applied, measured again
    assert backend.running() == backend.UNAPPLIED
    backend.remember("fp32", {"onednn": 1.01, "xla": 1.24}, {"onednn": 0.322, "eigen": 0.025}, backend.CACHE)
    backend.apply_at_import()
    assert backend.running() == "eigen" and os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert speed.run_backend(None, None, "fp32")[0] == "onednn"  # so train.py starts itself again on oneDNN
    backend.apply("onednn")  # the suite's (tests/conftest.py)


def test_a_re_executed_script_keeps_the_decision_it_was_started_again_for(monkeypatch):
    monkeypatch.setattr(backend.os, "execv", lambda *a: None)  # reexec_with without leaving this process
    backend.reexec_with("eigen", "the fastest measured now: eigen 1.0 s/step")
    assert backend.decided() == ("eigen", "the fastest measured now: eigen 1.0 s/step")
    assert backend.decided() is None  # once: its children decide for themselves
    backend.reexec_with("xla")
    backend.apply("onednn")  # the environment it was told about is not the one it runs: decide again
    assert backend.decided() is None


def test_the_probe_records_both_choices_and_says_the_prediction_one(monkeypatch, tmp_path):
    monkeypatch.setattr(backend, "CACHE", str(tmp_path / "backends.json"))
    zen3 = {"onednn": (1.01, 0.322), "eigen": (1.85, 0.025), "xla": (1.24, 0.020), "xla-eigen": (1.97, 0.0315)}
    monkeypatch.setattr(speed, "measure_in", lambda name, precision, predict: {
        "train": zen3[name][0], "predict": zen3[name][1] if predict else None})
    said = []
    assert speed.probe("fp32", said.append) == ("onednn", {n: t for n, (t, _) in zen3.items()})
    # XLA's prediction would be the fastest but is not a candidate, nor timed: it compiles at each cold start
    assert backend.cached("fp32")["predict"] == {"choice": "eigen", "seconds": {"onednn": 0.322, "eigen": 0.025}}
    assert said[-1] == "backend for prediction and evaluation here: eigen (eigen 25.0, onednn 322.0 ms/person)"


@pytest.mark.slow
def test_a_run_records_its_backend_and_keeps_it_when_it_resumes(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (backend.ENV, backend.APPLIED, "TF_XLA_FLAGS")}
    logdir = str(tmp_path / "run")

    def train(*extra):
        done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--smoke", "--logdir",
                               logdir, *SMALL_CPM, *extra], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert "backend: eigen (asked for)" in train("--backend", "eigen")  # the process started again on Eigen
    with open(os.path.join(logdir, "config.json")) as f:
        meta = json.load(f)
    assert meta["backend"] == "eigen" and meta["sessions"][-1]["backend"] == "eigen"
    assert "backend: eigen (the run's own)" in train("TRAIN.EPOCHS=2")


@pytest.mark.slow
def test_benchmark_times_backends_side_by_side():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), "train", "--backends",
                           "onednn", "eigen", "--steps", "1", "--warmup", "1", "--batch", "4", *SMALL_CPM],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("  ")]
    assert [(r[0], r[1]) for r in rows] == [(n, kind) for n in ("onednn", "eigen")
                                            for kind in ("train", "inference", "predict")]
    assert all(float(r[r.index(unit) - 1]) > 0 for r in rows for unit in ("s/batch", "ms/person") if unit in r)
    assert "fastest training step: " in done.stdout and "; fastest prediction (XLA's left out" in done.stdout
