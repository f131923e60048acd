"""Training across machines on TensorFlow's gRPC runtime, with tensorpack's DistributedTrainerReplicated.

tensorpack 0.11's distributed graph builder does not run as shipped on TensorFlow 2.21 (failures measured with one
parameter server and two workers on 127.0.0.1); the fixes here are the smallest that make it run. Fixes 1 and 2 patch
tensorpack's modules, so ``install()`` applies them, and only ClusterTrainer calls it: importing this module changes
nothing for other runs.

1. ``tensorpack/graph_builder/distributed.py`` calls TF1 names on the ``tensorflow`` module
   (``tf.train.replica_device_setter``, ``tf.FIFOQueue``, ``tf.get_variable``, ...), which TF 2 keeps only under
   ``tf.compat.v1``: ``AttributeError: module 'tensorflow._api.v2.train' has no attribute 'replica_device_setter'``.
   That module's ``tf`` becomes ``tf.compat.v1``. (``tensorpack/tfutils/distributed.py``'s session creator has the same
   problem, ``tf.global_variables_initializer``; ``_session_creator`` replaces it.)
2. ``tensorpack/graph_builder/utils._replace_global_by_local`` removes GLOBAL_VARIABLES from a variable's
   collections with ``set.remove``, which raises ``KeyError: 'variables'`` for the input queue's moving-average
   variable, already local; it becomes ``discard``.
3. ``DistributedReplicatedBuilder.build`` pairs the per-tower gradient lists, not the all-reduced gradients, with
   the variables (``zip(all_grads, all_vars[0])``): ``ValueError: Shapes must be equal rank ...
   ResourceApplyGradientDescent``. ``_ReplicatedBuilder.build`` below is tensorpack 0.11's with ``avg_grads``.
4. The global step, meant to be local to each worker, came out global on each worker's own device, where only the
   chief initialised it: the other workers waited for it forever. ClusterTrainer puts one global step on the
   parameter server instead, which every worker's step advances.

5. ``DistributedReplicatedBuilder._apply_gradients_and_copy`` applies the gradients one variable at a time (see
   ``_ReplicatedBuilder._apply_gradients_and_copy``).
6. With a single worker, the all-workers barrier holds no op that depends on the step, so the training op trained
   nothing (the global step stayed 0); the step is grouped into it.

Beyond the fixes, what a training tool needs on top of tensorpack's trainer:

- ``load_cluster`` / ``start_server``: the cluster file, checked, and this process's gRPC server, which carries our
  session settings (thread pools) because the distributed trainers accept no session config of their own; the
  graph rewrites of ``--precision bf16`` reach each worker's session through ``SessionManager``'s ``config``.
- The chief initialises the variables *and* restores a checkpoint (resume or ``--load``) before the other workers
  may start: they wait for a flag variable that only the chief's initialisation sets, so no worker takes a step on
  weights that are about to be overwritten. Non-chief workers poll for it every second rather than tensorpack's 30 s.
- ``PeerWatch``: a worker whose step has been waiting at the all-workers barrier for a while asks every other task
  of the cluster whether it is alive; a task that does not answer ends the step and the run with a one-line error
  instead of a hang (a busy chief, e.g. in its validation pass, still answers).
- ``trainer.loop.global_step`` is the shared step on the parameter server, which each worker's training step
  advances before the all-workers barrier and reads back after it (the learning-rate schedule, stats.json and
  resuming count shared steps), not this worker's count.
"""
import json
import os
import sys
import threading
import time
from dataclasses import dataclass

import tensorflow as tf
import tensorpack.graph_builder.distributed as tp_distributed
import tensorpack.graph_builder.utils as tp_graph_utils
from tensorpack.callbacks.steps import MaintainStepCounter
from tensorpack.graph_builder.training import DataParallelBuilder
from tensorpack.graph_builder.utils import allreduce_grads_naive, override_to_local_variable, split_grad_list
from tensorpack.tfutils.common import get_global_step_var
from tensorpack.tfutils.sessinit import JustCurrentSession
from tensorpack.train import DistributedTrainerReplicated, SingleCostTrainer
from tensorpack.utils import logger
from tensorpack.utils.argtools import memoized

from cpm.errors import UserError
from cpm.session import session_config


def _replace_global_by_local(kwargs):  # fix 2: tensorpack's, with discard for remove
    collections = set(kwargs.get("collections") or [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES])
    collections.discard(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    collections.add(tf.compat.v1.GraphKeys.LOCAL_VARIABLES)
    kwargs["collections"] = list(collections)


def install():
    """Apply fixes 1 and 2 to tensorpack's modules. Only a distributed run calls it (ClusterTrainer does): other runs
    use tensorpack as shipped. Idempotent."""
    tp_distributed.tf = tf.compat.v1  # fix 1
    tp_graph_utils._replace_global_by_local = _replace_global_by_local


class _ReplicatedBuilder(tp_distributed.DistributedReplicatedBuilder):
    def build(self, get_grad_fn, get_opt_fn):  # fix 3: tensorpack 0.11's build, applying the averaged gradients
        tf1 = tf.compat.v1
        with override_to_local_variable():
            get_global_step_var()
        get_opt_fn = memoized(get_opt_fn)
        with tf1.device(self.param_server_device):  # the optimiser's learning rate: one, on the parameter server
            get_opt_fn()
        grad_list = DataParallelBuilder.build_on_towers(self.towers, get_grad_fn, devices=self.raw_devices,
                                                        use_vs=[True] * len(self.towers))
        DataParallelBuilder._check_grad_list(grad_list)
        all_grads, all_vars = split_grad_list(grad_list)
        avg_grads = allreduce_grads_naive(all_grads, devices=self.raw_devices)
        avg_grads = list(zip(avg_grads, all_vars[0], strict=True))
        with tf1.device(self.param_server_device):
            ps_var_grads = tp_distributed.DistributedReplicatedBuilder._apply_shadow_vars(avg_grads)
            var_update_ops = self._apply_gradients_and_copy(get_opt_fn(), grad_list, ps_var_grads)
            self._shadow_vars = [v for _, v in ps_var_grads]
            self._shadow_model_vars = tp_distributed.DistributedReplicatedBuilder._shadow_model_variables(
                self._shadow_vars)
        # the shared step: advanced by this worker's update, before the all-workers barrier (fix 4)
        with tf1.control_dependencies(var_update_ops):
            main_fetch = tf1.group(tf1.assign_add(get_global_step_var(), 1), name="main_fetches")
        # fix 6: with a single worker tensorpack's barrier holds no enqueue, the only op that depended on the step, so
        # the training op trained nothing (measured: the global step stayed 0); the step is now part of it
        train_op = tf1.group(main_fetch, self._add_sync_queues_and_barrier("post_copy_barrier", [main_fetch]))
        with tf1.name_scope("initial_sync_variables"):
            initial_sync_op = self._get_initial_sync_op()
        model_sync_op = None
        if len(self._shadow_model_vars) and self.is_chief:
            with tf1.name_scope("sync_model_variables"):
                model_sync_op = self._get_sync_model_vars_op()
        return train_op, initial_sync_op, model_sync_op

    def _apply_gradients_and_copy(self, opt, raw_grad_list, ps_var_grads):
        """fix 5: one ``apply_gradients`` over all variables, then one barrier, then the copies back to the towers.

        tensorpack 0.11 calls ``opt.apply_gradients([(g, v)])`` once per variable, each with its own barrier: Adam's
        ``beta1_power``/``beta2_power`` then advance once per variable and step (its bias correction is gone after
        the first step), and a whole-step rule such as cpm.model.SkipNonFiniteUpdates judges each variable alone.
        """
        tf1 = tf.compat.v1
        with tf1.name_scope("apply_gradients"):
            apply_op = opt.apply_gradients(ps_var_grads)
            barrier = self._add_sync_queues_and_barrier("param_update_barrier", [apply_op])
            var_update_ops = []
            # (with one worker the barrier has no enqueue, so nothing of the update would run before it: fix 6)
            with tf1.control_dependencies([apply_op, barrier]), tf1.device(self.cpu_device):
                for vid, (_, v) in enumerate(ps_var_grads):
                    updated_value = v.read_value()
                    for tower in range(self.nr_gpu):
                        var_update_ops.append(raw_grad_list[tower][vid][1].assign(updated_value))
            return var_update_ops


@dataclass
class Worker:
    """This process's place in a cluster, for engine.trainer.train.

    Attributes:
        spec: the cluster file's dict (``load_cluster``).
        task: this worker's index; 0 is the chief.
        server: this process's running server (``start_server``).
        patience: seconds a step may wait at the barrier before PeerWatch checks the other tasks.
    """

    spec: dict
    task: int
    server: object
    patience: float = 60.0

    @property
    def count(self):
        return len(self.spec["worker"])

    @property
    def is_chief(self):
        return self.task == 0


def load_cluster(path, job, task):
    """The cluster file: JSON ``{"ps": ["host:port", ...], "worker": ["host:port", ...]}`` (tf.train.ClusterSpec's
    dict), checked against this process's ``job`` and ``task``. Returns the dict."""
    try:
        with open(path) as f:
            spec = json.load(f)
    except OSError as e:
        raise UserError(f"--cluster {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"--cluster {path}: not JSON ({e})") from None
    if not isinstance(spec, dict) or set(spec) != {"ps", "worker"} or not all(
            isinstance(spec[j], list) and spec[j] and all(isinstance(a, str) and ":" in a for a in spec[j])
            for j in ("ps", "worker")):
        raise UserError(f'--cluster {path}: expected {{"ps": ["host:port", ...], "worker": ["host:port", ...]}}')
    if job not in spec:
        raise UserError(f"--job {job}: choose ps or worker")
    if not 0 <= task < len(spec[job]):
        raise UserError(f"--task {task}: --cluster {path} has {len(spec[job])} {job} task(s), 0 to "
                        f"{len(spec[job]) - 1}")
    return spec


def start_server(spec, job, task, precision="fp32"):
    """This process's ``tf.compat.v1.train.Server`` in the cluster ``spec``, with our session settings."""
    try:
        return tf.compat.v1.train.Server(tf.train.ClusterSpec(spec), job_name=job, task_index=task,
                                         config=session_config(precision))
    except tf.errors.OpError as e:  # e.g. the port is taken
        raise UserError(f"{job} task {task} cannot serve at {spec[job][task]}: {e.message}") from None


class ClusterTrainer(DistributedTrainerReplicated):
    """tensorpack's DistributedTrainerReplicated with the fixed builder, a shared global step and a peer watch.

    Args:
        gpus: this worker's device ids ([0] on a CPU: soft placement puts the tower there).
        server: this process's ``tf.compat.v1.train.Server``; a parameter server's constructor never returns (it
            serves until killed).
        patience: seconds a step may wait before PeerWatch asks the other tasks whether they are alive.
    """

    def __init__(self, gpus, server, patience=60.0):
        install()
        super().__init__(gpus, server)
        self._builder = _ReplicatedBuilder(gpus, server)
        self.is_chief = self._builder.is_chief
        self.patience = patience

    def _setup_input(self, input_signature, input):
        # fix 4: get_global_step_var opens a fresh root variable scope, which drops tensorpack's local-variable getter
        with tf.compat.v1.device(self._builder.param_server_device):
            get_global_step_var()
        return super()._setup_input(input_signature, input)

    def register_callback(self, cb):
        # tensorpack's MaintainStepCounter increments the global step in a separate fetch, unordered with the barrier;
        # here the training step itself advances it, and run_step reads it back after the barrier
        if isinstance(cb, MaintainStepCounter):
            return False
        return super().register_callback(cb)

    def _setup_graph(self, input, get_cost_fn, get_opt_fn):
        callbacks = super()._setup_graph(input, get_cost_fn, get_opt_fn)
        with tf.control_dependencies([self.train_op]):
            self._shared_step = tf.identity(get_global_step_var())
        self._watch = PeerWatch(self.server)
        return callbacks

    def initialize(self, session_creator, session_init):
        """``session_creator``: ours (cpm.session.SessionCreator), whose config the workers' sessions take."""
        config = getattr(session_creator, "config", None)
        session_init._setup_graph()
        creator = _SessionCreator(self.server, session_init if self.is_chief else None, config)
        SingleCostTrainer.initialize(self, creator, JustCurrentSession())
        self._watch.start(self.sess, self.patience)

    def run_step(self):
        self._watch.step_started()
        _, step = self.hooked_sess.run([self.train_op, self._shared_step])
        self._watch.step_ended()
        self.loop._global_step = int(step)


class _SessionCreator(tf.compat.v1.train.SessionCreator):
    """tensorpack's get_distributed_session_creator, with a restore on the chief and a one-second poll elsewhere.

    The chief initialises the variables, runs ``session_init`` (a checkpoint to resume or fine-tune from), and only
    then the flag variable ``cluster_ready``, which every other worker's readiness check waits for.
    """

    def __init__(self, server, session_init, config, max_wait_secs=1800):
        tf1 = tf.compat.v1
        self.server, self.session_init, self.config = server, session_init, config
        self.max_wait_secs = max_wait_secs
        self.is_chief = server.server_def.job_name == "worker" and server.server_def.task_index == 0
        model_variables = tf1.global_variables()
        stray = [v.name for v in model_variables if "/job:ps" not in v.device]
        if stray:  # the chief would initialise its own copy and every other worker wait for theirs forever
            raise RuntimeError(f"global variables outside the parameter servers: {', '.join(stray[:5])}")
        with tf1.device("/job:ps/task:0"):
            ready = tf1.get_variable("cluster_ready", [], tf.bool, tf1.zeros_initializer(), trainable=False,
                                     collections=[])
        self.init_op = tf1.variables_initializer(model_variables)
        self.ready_flag_op = ready.initializer
        uninitialized = tf1.report_uninitialized_variables(model_variables + [ready])
        self.manager = tf1.train.SessionManager(
            local_init_op=tf1.local_variables_initializer(), ready_op=uninitialized,
            ready_for_local_init_op=uninitialized, graph=tf1.get_default_graph(), recovery_wait_secs=1)

    def _restore_then_flag(self, sess):
        if self.session_init is not None:
            self.session_init._run_init(sess)
        sess.run(self.ready_flag_op)

    def create_session(self):
        if self.is_chief:
            return self.manager.prepare_session(master=self.server.target, init_op=self.init_op,
                                                init_fn=self._restore_then_flag, config=self.config)
        sess = self.manager.wait_for_session(master=self.server.target, config=self.config,
                                             max_wait_secs=self.max_wait_secs)
        if sess is None:
            raise UserError(f"the chief (worker 0) did not initialise the model within {self.max_wait_secs} s")
        return sess


class PeerWatch:
    """Ends a training step that waits for a task that is gone.

    A worker's step ends at a barrier that every worker's step must reach; a killed worker (or parameter server)
    would leave the others waiting forever. A daemon thread looks every second: once the current step has run for
    ``patience`` seconds (and every ``patience`` seconds after that) it runs a tiny op on every other task of the
    cluster. A task whose address refuses the connection (its process is gone), or that misses the ``probe_seconds``
    deadline in ``late_probes`` rounds in a row (stopped, or its machine hung), becomes ``error`` (a UserError naming
    it) and the process exits at once with run_main's status for a UserError (2), after one ``error:`` line: the
    waiting step cannot be cancelled (closing the session waits for it), and nothing is lost by not unwinding --
    the chief's checkpoints are written atomically and the data workers die with their parent (dataflow.workers).
    A task that is merely busy (the chief in its validation pass or writing a checkpoint) answers, and the step
    keeps waiting.
    """

    def __init__(self, server, probe_seconds=10.0, late_probes=3):
        d = server.server_def
        me = (d.job_name, d.task_index)
        self.probe_ms, self.late_probes = int(1000 * probe_seconds), late_probes
        self.error = None
        self._probes = []
        for job in d.cluster.job:
            for task, address in sorted(job.tasks.items()):
                if (job.name, task) != me:
                    with tf.compat.v1.device(f"/job:{job.name}/task:{task}/device:CPU:0"):
                        probe = tf.compat.v1.random_uniform([], name=f"peer_probe_{job.name}{task}")
                    self._probes.append((f"{job.name} task {task} ({address})", probe))
        self._started = None

    def start(self, sess, patience):
        """Watch steps in ``sess``. The probes run once first: their graphs are registered on every task now, not
        during a stall (the first run of a fetch on a remote task costs far more than the op)."""
        self.sess, self.patience = sess, patience
        sess.run([probe for _, probe in self._probes])
        threading.Thread(target=self._watch, name="PeerWatch", daemon=True).start()

    def step_started(self):
        self._started = time.monotonic()

    def step_ended(self):
        self._started = None

    def _watch(self):
        last_probe, late = 0.0, {}
        while self.error is None:
            time.sleep(1.0)
            started = self._started
            if started is None or time.monotonic() - max(started, last_probe) < self.patience:
                continue
            last_probe = time.monotonic()
            for name, probe in self._probes:
                try:
                    self.sess.run(probe, options=tf.compat.v1.RunOptions(timeout_in_ms=self.probe_ms))
                    late[name] = 0
                    continue
                except tf.errors.DeadlineExceededError as e:  # a stopped process, or an overloaded machine
                    late[name] = late.get(name, 0) + 1
                    if late[name] < self.late_probes:
                        continue
                    error = e
                except tf.errors.OpError as e:  # e.g. UnavailableError: nothing listens at its address any more
                    error = e
                if self._started is None:  # the step ended meanwhile: whatever happened, it was not stuck
                    break
                self.error = UserError(
                    f"{name} stopped answering ({type(error).__name__}) while this worker waited "
                    f"{time.monotonic() - started:.0f} s at the all-workers barrier; stopping. The chief's last "
                    f"checkpoint is intact: restart every task with the same commands to resume")
                logger.error(str(self.error))
                # as cpm.errors.run_main prints it, on a line of its own (a progress bar may hold the last one)
                print(f"\nerror: {self.error}", file=sys.stderr, flush=True)
                os._exit(2)
