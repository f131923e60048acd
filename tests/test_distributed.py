"""engine.distributed: tensorpack's DistributedTrainerReplicated on TensorFlow 2.21's gRPC runtime, with 1 parameter
server and 2 workers as separate processes on 127.0.0.1 (a linear model: what is tested is the runtime, not the CPM;
scripts/train.py --cluster comes next, issue 12)."""
import os
import socket
import subprocess
import sys

import pytest

from tests.helpers import ROOT

PROGRAM = r'''
import json, sys
import numpy as np
import cpm  # noqa: F401
import tensorflow as tf
from tensorpack import ModelDesc, QueueInput, TrainConfig, launch_train_with_config
from tensorpack.callbacks import Callback
from tensorpack.dataflow import DataFromGenerator
from tensorpack.utils import logger
from engine.distributed import ClusterTrainer

job, task, ports, logdir = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
cluster = tf.train.ClusterSpec({"ps": [f"127.0.0.1:{ports[0]}"],
                                "worker": [f"127.0.0.1:{p}" for p in ports[1:]]})
server = tf.compat.v1.train.Server(cluster, job_name=job, task_index=task,
                                   config=tf.compat.v1.ConfigProto(allow_soft_placement=True))

class Linear(ModelDesc):
    def inputs(self):
        return [tf.TensorSpec([None, 4], tf.float32, "x"), tf.TensorSpec([None, 1], tf.float32, "y")]
    def build_graph(self, x, y):
        w = tf.compat.v1.get_variable("w", [4, 1], initializer=tf.compat.v1.zeros_initializer())
        return tf.reduce_mean(tf.square(tf.matmul(x, w) - y), name="cost")
    def optimizer(self):
        return tf.compat.v1.train.GradientDescentOptimizer(0.1)

def batches():
    rng = np.random.default_rng(task)
    while True:
        x = rng.normal(size=(8, 4)).astype(np.float32)
        yield [x, x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)]

class Report(Callback):
    _chief_only = False  # tensorpack runs callbacks on the chief alone unless told

    def _setup_graph(self):  # the read ops, before tensorpack finalizes the graph
        variables = {v.name: v for v in tf.compat.v1.global_variables() + tf.compat.v1.local_variables()}
        self.fetches = [tf.identity(variables["w:0"]), tf.identity(variables["tower0/w:0"]),
                        tf.identity(tf.compat.v1.train.get_global_step())]

    def _after_train(self):
        shared, own, step = self.trainer.sess.run(self.fetches)
        print("RESULT", json.dumps({"task": task, "w": shared.ravel().tolist(), "own": own.ravel().tolist(),
                                    "global_step": int(step)}), flush=True)

trainer = ClusterTrainer([0], server)  # a parameter server never returns from here
logger.set_logger_dir(f"{logdir}/worker{task}", action="d")
launch_train_with_config(TrainConfig(model=Linear(), data=QueueInput(DataFromGenerator(batches)),
                                     callbacks=[Report()], steps_per_epoch=30, max_epoch=2), trainer)
'''


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_one_parameter_server_and_two_workers_train_one_model(tmp_path):
    import json

    program = tmp_path / "node.py"
    program.write_text(PROGRAM)
    ports = json.dumps(_free_ports(3))
    env = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")

    def start(job, task):
        return subprocess.Popen([sys.executable, str(program), job, str(task), ports, str(tmp_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    ps = start("ps", 0)
    workers = [start("worker", k) for k in (0, 1)]
    try:
        outputs = [w.communicate(timeout=240)[0] for w in workers]
    finally:
        for p in [ps] + workers:
            p.kill()
    for w, out in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out[-3000:]
    results = [json.loads(line.split(" ", 1)[1]) for out in outputs for line in out.splitlines()
               if line.startswith("RESULT ")]
    assert sorted(r["task"] for r in results) == [0, 1]
    # one model: the parameter server's weights, which both workers read, and each worker's own copy agree, close to
    # the truth (1, -2, 0.5, 3) after 60 steps each
    for r in results:
        assert max(abs(a - b) for a, b in zip(r["own"], r["w"], strict=True)) < 1e-5
    assert max(abs(a - b) for a, b in zip(results[0]["w"], results[1]["w"], strict=True)) < 1e-5
    assert max(abs(a - b) for a, b in zip(results[0]["w"], [1.0, -2.0, 0.5, 3.0], strict=True)) < 0.05
    # one global step on the parameter server, advanced by every worker's steps
    assert results[0]["global_step"] >= 60 and results[1]["global_step"] >= 60
    assert max(r["global_step"] for r in results) == 120
