"""Session configuration for fp32 or oneDNN bf16 auto mixed precision on CPUs."""
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorpack.tfutils import get_default_sess_config
from tensorpack.utils import logger

PRECISIONS = ("fp32", "bf16")
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 arithmetic


def cpu_supports_bf16(cpuinfo="/proc/cpuinfo"):
    """True if the CPU reports native bf16 instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open(cpuinfo) as f:
            flags = f.read().split()
    except OSError:
        return False
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def session_config(precision):
    """A tf ConfigProto for ``precision``, or None for tensorpack's default (fp32) session config.

    bf16 turns on TensorFlow's oneDNN auto mixed precision in tensorpack's default config. Where the CPU lacks bf16
    instructions it falls back to fp32 with a message (emulated bf16 is slower than fp32). Variables, the loss and
    the optimiser stay fp32 either way: the rewrite only changes eligible ops (convs, matmuls). fp32 returns None
    rather than an equal config because tensorpack prints a GPU-options warning for any config a user supplies.
    """
    if precision != "bf16":
        return None
    if not cpu_supports_bf16():
        logger.warn("precision: this CPU has no native bf16 (avx512_bf16/amx_bf16 in /proc/cpuinfo); using fp32")
        return None
    config = get_default_sess_config()
    config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    logger.info("precision: bf16 (oneDNN auto mixed precision)")
    return config

