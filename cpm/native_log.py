"""TensorFlow's C++ start-up lines, held back from a tool's console.

TF_CPP_MIN_LOG_LEVEL=2 (cpm/__init__.py) silences TensorFlow's C++ info and warnings once its logging is set up,
but a TensorFlow 2.21 import prints six lines before that ("All log messages before absl::InitializeLog() ...",
oneDNN and CUDA notices, twice), and its first device lookup on a machine without a GPU driver an error line about
cuInit. The first import of TensorFlow and every session we create (cpm.session.SessionCreator) run under
``held_native_log``, which sends file descriptor 2 to a file and then writes back every line except those:
anything else printed meanwhile (a real error, Python's warnings) reaches stderr, only later. (The devices are not
looked up at import to have it over with: a distributed run must set its cluster up first.) Set
TF_CPP_MIN_LOG_LEVEL to 0 or 1 to see everything.
"""
import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+\] "  # absl info and warning lines, which the log level would have dropped
    r"|E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit")  # no GPU driver: TensorFlow uses the CPU


@contextlib.contextmanager
def held_native_log():
    """Run the block with fd 2 held; afterwards write back what it printed, less TensorFlow's start-up lines."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") not in ("2", "3"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _CHATTER.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _HeldTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first import of ``tensorflow`` (by us, tensorpack or anyone) under ``held_native_log``."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module):
                with held_native_log():
                    run(module)
            spec.loader.exec_module = exec_module
        return spec


def hold_tensorflow_import_log():
    if "tensorflow" not in sys.modules and not any(isinstance(f, _HeldTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _HeldTensorFlowImport())
