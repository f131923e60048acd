"""scripts/train.py --cluster: tensorpack's DistributedTrainerReplicated (engine.distributed) on TensorFlow's gRPC
runtime, with 1 parameter server and 2 workers as separate processes on 127.0.0.1, training the CPM on the sample."""
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ROOT, SMALL_CPM


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Cluster:
    """The three processes of one cluster file; ``start(job, task, *args)`` runs train.py for one task."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        ports = _free_ports(3)
        self.file = tmp_path / "cluster.json"
        self.file.write_text(json.dumps({"ps": [f"127.0.0.1:{ports[0]}"],
                                         "worker": [f"127.0.0.1:{p}" for p in ports[1:]]}))
        self.logdir = str(tmp_path / "run")
        self.procs = []

    def start(self, job, task, *args):
        log = open(self.dir / f"{job}{task}-{len(self.procs)}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--smoke", "--logdir", self.logdir,
             "--cluster", str(self.file), "--job", job, "--task", str(task), *SMALL_CPM, *args],
            stdout=log, stderr=subprocess.PIPE, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
        proc.log = log.name
        self.procs.append(proc)
        return proc

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_bad_cluster_file_is_one_line_naming_it(tmp_path):
    from cpm.errors import UserError
    from engine.distributed import load_cluster

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]}))
    assert load_cluster(str(good), "worker", 1)["worker"][1] == "127.0.0.1:3"
    cases = [("missing.json", None, "worker", 0, "missing.json: No such file"),
             ("bad.json", "{", "worker", 0, "bad.json: not JSON"),
             ("shape.json", '{"worker": ["127.0.0.1:2"]}', "worker", 0, 'expected {"ps": ["host:port", ...]'),
             ("port.json", '{"ps": ["a"], "worker": ["b:1"]}', "worker", 0, 'expected {"ps"'),
             ("good.json", None, "worker", 2, "--task 2: --cluster " + str(good) + " has 2 worker task(s), 0 to 1"),
             ("good.json", None, "chief", 0, "--job chief: choose ps or worker")]
    for name, text, job, task, message in cases:
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(UserError) as e:
            load_cluster(str(tmp_path / name), job, task)
        assert message in str(e.value) and "\n" not in str(e.value), (name, str(e.value))


def _stats(logdir):
    with open(os.path.join(logdir, "stats.json")) as f:
        return json.load(f)


def _shard(logdir):
    with open(os.path.join(logdir, "config.json")) as f:
        return json.load(f)["shard"]


@pytest.mark.slow
def test_cluster_trains_one_model_survives_a_killed_worker_and_resumes(tmp_path):
    """One test, to pay for starting a cluster twice only: a run of 2 epochs whose worker 1 is killed after epoch 1,
    then the same commands again, which finish the run."""
    cluster = Cluster(tmp_path)
    args = ("--config", "TRAIN.EPOCHS=2", "--peer-timeout", "3")
    try:
        ps = cluster.start("ps", 0)
        chief, other = (cluster.start("worker", k, *args) for k in (0, 1))
        deadline = time.monotonic() + 400
        while not os.path.exists(os.path.join(cluster.logdir, "checkpoint")):  # the chief's end of epoch 1
            assert chief.poll() is None and time.monotonic() < deadline, chief.stderr.read()[-3000:]
            time.sleep(0.5)
        other.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        err = chief.communicate(timeout=120)[1]
        assert time.monotonic() - killed < 60  # patience 3 s + a probe of at most 10 s, after the epoch's end
        assert chief.returncode == 2, err[-3000:]
        assert err.strip().splitlines()[-1].startswith("error: worker task 1 (127.0.0.1:")
        assert "stopped answering" in err and "restart every task" in err
        # the end-of-epoch-1 checkpoint: the other worker may land one step on the parameter server during the save
        assert tf.train.load_variable(os.path.join(cluster.logdir, "model-8"), "global_step") in (8, 9)
        # the same commands, every task restarted, resume from the chief's checkpoint and finish the run
        ps.kill()
        ps.wait()
        cluster.start("ps", 0)
        workers = [cluster.start("worker", k, *args) for k in (0, 1)]
        errors = [w.communicate(timeout=400)[1] for w in workers]
    finally:
        cluster.stop()
    for w, err in zip(workers, errors, strict=True):  # the workers stop by themselves
        assert w.returncode == 0, err[-3000:]
    chief, other = cluster.logdir, os.path.join(cluster.logdir, "worker1")
    # one shared global step: each epoch is the smoke run's 8 steps, 4 by each worker, and both count the same
    history = _stats(chief)
    assert [e["epoch_num"] for e in history] == [1, 2] and history[-1]["global_step"] in (16, 17)
    assert _stats(other)[-1]["global_step"] == history[-1]["global_step"]
    # one optimiser update per worker step: Adam's beta1_power is 0.9 ** updates (tensorpack applied one update per
    # variable, ~50 per step); a few steps of slack, as the resumed checkpoint was a snapshot taken while training
    final = os.path.join(chief, f"model-{history[-1]['global_step']}")
    updates = math.log(tf.train.load_variable(final, "beta1_power")) / math.log(0.9)
    assert abs(updates - history[-1]["global_step"]) <= 3
    # the chief alone checkpoints and validates; the other worker keeps its own log and stats
    assert all("val/pcp" in e for e in history) and not any("val/pcp" in e for e in _stats(other))
    assert not [f for f in os.listdir(other) if f.startswith(("model-", "checkpoint", "max-val"))]
    # each worker its own half of the people
    shards = [_shard(chief), _shard(other)]
    assert [s["task"] for s in shards] == [0, 1] and shards[0]["first"] != shards[1]["first"]
    assert shards[0]["people"] + shards[1]["people"] == shards[0]["of"]
    # the checkpoint serves single-process prediction
    from eval.api import PoseEstimator

    (person,) = PoseEstimator(chief)(np.zeros((120, 80, 3), np.uint8), box=(0, 0, 80, 120))
    assert len(person.joints) == 14


def test_the_cluster_patches_apply_only_when_installed():
    """Importing engine.distributed (the trainer does, for every run) leaves tensorpack as shipped; install(), which
    only ClusterTrainer calls, patches its distributed builder's TF names and its collection helper."""
    probe = ("import tensorflow as tf, tensorpack.graph_builder.distributed as d, tensorpack.graph_builder.utils as u\n"
             "import engine.trainer, engine.distributed as ed\n"
             "before = (d.tf is tf.compat.v1, u._replace_global_by_local is ed._replace_global_by_local)\n"
             "ed.install()\n"
             "print(before, (d.tf is tf.compat.v1, u._replace_global_by_local is ed._replace_global_by_local))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "(False, False) (True, True)"
