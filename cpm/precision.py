"""TensorFlow session settings of every session we create: thread pools, and fp32 or oneDNN bf16 on CPUs."""
import os

from tensorflow.core.protobuf import rewriter_config_pb2
from tensorpack.tfutils import get_default_sess_config
from tensorpack.tfutils.sesscreate import NewSessionCreator
from tensorpack.utils import logger

PRECISIONS = ("fp32", "bf16")
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 arithmetic


# Vector and matrix flags that decide how fast our convolutions run (oneDNN dispatches on them).
_SPEED_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def _cpuinfo(path="/proc/cpuinfo"):
    """(model name, set of flags) of the first CPU in ``path``; ("unknown", set()) if unreadable."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return "unknown", set()
    fields = dict(line.split(":", 1) for line in text.split("\n\n")[0].splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return fields.get("model name", "unknown"), set(fields.get("flags", "").split())


def cpu_supports_bf16(cpuinfo="/proc/cpuinfo"):
    """True if the CPU reports native bf16 instructions (AVX512-BF16 or AMX-BF16)."""
    return any(flag in _cpuinfo(cpuinfo)[1] for flag in _BF16_CPU_FLAGS)


def cpu_description(cpuinfo="/proc/cpuinfo"):
    """One line naming the CPU, its core count and its speed-relevant flags, e.g.
    ``AMD EPYC, 2 cores, flags avx2 fma avx512f avx512_vnni avx512_bf16``."""
    model, flags = _cpuinfo(cpuinfo)
    present = [f for f in _SPEED_CPU_FLAGS if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags {' '.join(present) or 'none of ' + ' '.join(_SPEED_CPU_FLAGS)}"


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
        if cpu_supports_bf16():
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
