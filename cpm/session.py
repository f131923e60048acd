"""TensorFlow session settings of every session we create: thread pools, and fp32 or oneDNN bf16 on CPUs."""
import os

from tensorflow.core.protobuf import rewriter_config_pb2
from tensorpack.tfutils import get_default_sess_config
from tensorpack.tfutils.sesscreate import NewSessionCreator
from tensorpack.utils import logger

from cpm.native_log import held_native_log
from cpm.precision import cpu_supports_bf16


def session_config(precision="fp32"):
    """The tf ConfigProto of our sessions: tensorpack's default with CPU-wide thread pools, and bf16 if asked.

    tensorpack's default runs each op on one thread (``intra_op_parallelism_threads = 1``, a GPU-training setting
    that leaves the host to the input pipeline); on a CPU that serialises every convolution, so both pools go back to
    TensorFlow's own default (0: one thread per core). bf16 turns on oneDNN auto mixed precision where the CPU has
    bf16 instructions and falls back to fp32 with a message elsewhere (emulated bf16 is slower than fp32). Variables,
    the loss and the optimiser stay fp32 either way: the rewrite only changes eligible ops (convs, matmuls).
    """
    config = get_default_sess_config()
    config.intra_op_parallelism_threads = 0
    config.inter_op_parallelism_threads = 0
    if precision == "bf16":
        if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":  # a prediction process on Eigen (cpm.backend)
            logger.warn("precision: bf16 is oneDNN's and this process runs Eigen; using fp32 (CPM_BACKEND=onednn "
                        "for bf16)")
        elif cpu_supports_bf16():
            config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = \
                rewriter_config_pb2.RewriterConfig.ON
            logger.info("precision: bf16 (oneDNN auto mixed precision)")
        else:
            logger.warn("precision: this CPU has no native bf16 (avx512_bf16/amx_bf16 in /proc/cpuinfo); using fp32")
    return config


class SessionCreator(NewSessionCreator):
    """tensorpack's NewSessionCreator with ``session_config(precision)``.

    Passing a config to NewSessionCreator prints two warnings about GPU options aimed at users who build their own;
    ours keeps tensorpack's GPU options, so it is passed as tensorpack's own default would be.
    """

    def __init__(self, precision="fp32", target=""):
        super().__init__(target=target)
        self.config = session_config(precision)

    def create_session(self):
        with held_native_log():  # where it is the first device lookup: the cuInit error of a machine without a GPU
            return super().create_session()
