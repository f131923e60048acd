"""The precisions we run in and the CPU facts that decide them (no TensorFlow: the LiteRT inference path imports
this too). cpm.session applies them to TensorFlow sessions."""
import os

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

