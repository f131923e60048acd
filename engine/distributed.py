"""Training across machines on TensorFlow's gRPC runtime, with tensorpack's DistributedTrainerReplicated.

tensorpack 0.11's distributed graph builder does not run as shipped on TensorFlow 2.21 (failures measured with one
parameter server and two workers on 127.0.0.1); the fixes here are the smallest that make it run:

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

Non-chief workers also poll for the chief's initialisation every second rather than tensorpack's 30 s.
"""
import tensorflow as tf
import tensorpack.graph_builder.distributed as tp_distributed
import tensorpack.graph_builder.utils as tp_graph_utils
from tensorpack.graph_builder.training import DataParallelBuilder
from tensorpack.graph_builder.utils import allreduce_grads_naive, override_to_local_variable, split_grad_list
from tensorpack.tfutils.common import get_global_step_var
from tensorpack.tfutils.sesscreate import NewSessionCreator
from tensorpack.train import DistributedTrainerReplicated, SingleCostTrainer
from tensorpack.utils.argtools import memoized

tp_distributed.tf = tf.compat.v1  # fix 1


def _replace_global_by_local(kwargs):  # fix 2: tensorpack's, with discard for remove
    collections = set(kwargs.get("collections") or [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES])
    collections.discard(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    collections.add(tf.compat.v1.GraphKeys.LOCAL_VARIABLES)
    kwargs["collections"] = list(collections)


tp_graph_utils._replace_global_by_local = _replace_global_by_local


class _ReplicatedBuilder(tp_distributed.DistributedReplicatedBuilder):
    def build(self, get_grad_fn, get_opt_fn):  # fix 3: tensorpack 0.11's build, applying the averaged gradients
        tf1 = tf.compat.v1
        with override_to_local_variable():
            get_global_step_var()
        get_opt_fn = memoized(get_opt_fn)
        get_opt_fn()  # the optimiser first, so that its learning rate is a global variable
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
        main_fetch = tf1.group(*var_update_ops, name="main_fetches")
        train_op = self._add_sync_queues_and_barrier("post_copy_barrier", [main_fetch])
        with tf1.name_scope("initial_sync_variables"):
            initial_sync_op = self._get_initial_sync_op()
        model_sync_op = None
        if len(self._shadow_model_vars) and self.is_chief:
            with tf1.name_scope("sync_model_variables"):
                model_sync_op = self._get_sync_model_vars_op()
        return train_op, initial_sync_op, model_sync_op


class ClusterTrainer(DistributedTrainerReplicated):
    """tensorpack's DistributedTrainerReplicated with the fixed builder. ``server``: this process's
    ``tf.compat.v1.train.Server``; a parameter server's constructor never returns (it serves until killed)."""

    def __init__(self, gpus, server):
        super().__init__(gpus, server)
        self._builder = _ReplicatedBuilder(gpus, server)
        self.is_chief = self._builder.is_chief

    def _setup_input(self, input_signature, input):
        # fix 4: get_global_step_var opens a fresh root variable scope, which drops tensorpack's local-variable getter
        with tf.compat.v1.device(self._builder.param_server_device):
            get_global_step_var()
        return super()._setup_input(input_signature, input)

    def initialize(self, session_creator, session_init):
        if not isinstance(session_creator, NewSessionCreator) or session_creator.user_provided_config:
            raise ValueError("a distributed trainer takes its session config from its tf.train.Server")
        SingleCostTrainer.initialize(self, _session_creator(self.server), session_init)


def _session_creator(server):
    """tensorpack's get_distributed_session_creator, polling every second: the chief initialises the variables, the
    other workers wait until it has."""
    tf1 = tf.compat.v1
    is_chief = server.server_def.job_name == "worker" and server.server_def.task_index == 0
    init_op = tf1.global_variables_initializer()
    manager = tf1.train.SessionManager(
        local_init_op=tf1.local_variables_initializer(), ready_op=tf1.report_uninitialized_variables(),
        ready_for_local_init_op=tf1.report_uninitialized_variables(tf1.global_variables()),
        graph=tf1.get_default_graph(), recovery_wait_secs=1)

    class Creator(tf1.train.SessionCreator):
        def create_session(self):
            if is_chief:
                return manager.prepare_session(master=server.target, init_op=init_op)
            return manager.wait_for_session(master=server.target)

    return Creator()
