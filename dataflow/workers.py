"""How our data-worker processes behave: they die with the trainer and exchange msgpack, never pickle.

tensorpack's ``MultiProcessMapDataZMQ`` forks workers that serve the trainer over ZMQ sockets. Out of the box:

- a worker asks Linux to kill it when its parent dies only if ``python-prctl`` is installed (it needs libcap
  headers to build), so a trainer killed with SIGKILL leaves its workers running, blocked on a socket forever;
- datapoints cross the sockets as pickle (``TENSORPACK_ONCE_SERIALIZE``), which executes code when loaded.

``install()`` points both hooks of ``tensorpack.dataflow.parallel_map`` at ours: the death signal is set with
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through ctypes (nothing to build), and datapoints (lists of numpy arrays and
scalars) travel as msgpack with msgpack-numpy, which tensorpack already depends on.
"""
import ctypes
import multiprocessing
import os
import signal
import sys

from tensorpack.dataflow import parallel_map
from tensorpack.utils.serialize import MsgpackSerializer

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent():
    """Have the kernel SIGKILL this process when the thread that forked it exits, however that thread ends.

    Called first thing in a worker. If the parent died between the fork and this call, the worker exits at once.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)


def install():
    """Make every MultiProcessMapDataZMQ created from now on use our death signal and msgpack. Idempotent."""
    parallel_map.enable_death_signal = lambda _warn=True: die_with_parent()
    parallel_map.dumps = MsgpackSerializer.dumps
    parallel_map.loads = MsgpackSerializer.loads
