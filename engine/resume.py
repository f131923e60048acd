"""Resuming a run from wherever it was stopped: checkpoints by time as well as by epoch, and mid-epoch restarts.

tensorpack's ModelSaver saves when triggered (at epoch ends) and AutoResumeTrainConfig resumes at the epoch after
the last one in stats.json. With one pass over LSP + LSPET per epoch (~700 steps) a kill on a slow CPU then loses
more than half an hour, and a checkpoint taken inside an epoch would be resumed at the wrong epoch. Here the
checkpoint's own global step says where the run stands: ``resume_point`` turns it into (epoch, steps already done in
that epoch), ``ShortenFirstEpoch`` runs only the rest of that epoch, and ``align_stats`` drops history newer than the
checkpoint, so the step counter and the epochs stay those of an uninterrupted run.

A kill while saving cannot break a resume: TensorFlow writes the checkpoint's files first and then replaces the
``checkpoint`` file that names the newest one atomically (write and rename), so that file always names a complete
checkpoint; partial files of the interrupted save are left behind and overwritten by the next save of that step.
"""
import json
import os
import signal
import threading
import time

import tensorflow as tf
from tensorpack.callbacks import Callback, MaxSaver, ModelSaver
from tensorpack.utils import logger

from cpm.checkpoint import latest_in

#: Fault injection for tests: SIGKILL the process in its k-th checkpoint save (counting from 1), after the
#: checkpoint's files are written and before the ``checkpoint`` file names it.
KILL_IN_SAVE_ENV = "CPM_TEST_KILL_IN_SAVE"


def latest_checkpoint(logdir):
    """(checkpoint prefix, its global step) named by ``logdir/checkpoint``, or (None, 0) if there is none."""
    path = latest_in(logdir)
    if path is None:
        return None, 0
    return path, int(tf.train.load_variable(path, "global_step"))


def resume_point(logdir, steps_per_epoch):
    """Where a run in ``logdir`` continues.

    Returns:
        (checkpoint prefix or None, starting epoch (1-based), steps of that epoch already done).
    """
    path, step = latest_checkpoint(logdir)
    return path, step // steps_per_epoch + 1, step % steps_per_epoch


def align_stats(logdir, starting_epoch):
    """Drop stats.json entries of epochs from ``starting_epoch`` on: they describe training the checkpoint lost.

    tensorpack's JSONWriter appends to stats.json only if its last epoch precedes the starting epoch (else it moves
    the file aside and starts a new one), so after this the history continues where the checkpoint stands.
    """
    path = os.path.join(logdir, "stats.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        stats = json.load(f)
    kept = [s for s in stats if s.get("epoch_num", 0) < starting_epoch]
    if len(kept) != len(stats):
        logger.info(f"stats.json: dropped {len(stats) - len(kept)} entries newer than the checkpoint")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(kept, f)
        os.replace(tmp, path)


class ShortenFirstEpoch(Callback):
    """Run only the remaining ``steps_per_epoch - done`` steps of the first epoch of a run resumed mid-epoch.

    tensorpack's main loop reads ``trainer.loop.steps_per_epoch`` when each epoch's step loop starts, after the
    ``before_epoch`` callbacks: lowering it there for one epoch ends that epoch at the same global step as an
    uninterrupted run would.
    """

    def __init__(self, done):
        self.done = done

    def _before_epoch(self):
        if self.done:
            self._full = self.trainer.loop.steps_per_epoch
            self.trainer.loop.steps_per_epoch = self._full - self.done
            logger.info(f"resuming mid-epoch: {self.done} of this epoch's {self._full} steps were done")

    def _after_epoch(self):
        if self.done:
            self.trainer.loop.steps_per_epoch = self._full
            self.done = 0


class ClusterResume(ShortenFirstEpoch):
    """Where each worker of a cluster (engine.distributed) continues: from the shared global step.

    A worker other than the chief may have no copy of the run directory, so the epoch and the steps already done in
    it come from the global step on the parameter server, read when training starts (after the chief restored its
    checkpoint). Every worker takes ``steps_per_epoch`` steps per epoch and each advances the shared step, so an epoch
    is ``steps_per_epoch * workers`` shared steps. Sets the loop's starting epoch before tensorpack's JSONWriter
    reads it, and cuts this worker's stats.json back as ``align_stats`` does.
    """

    _chief_only = False

    def __init__(self, steps_per_epoch, workers):
        super().__init__(0)
        self.steps_per_epoch, self.workers = steps_per_epoch, workers

    def _before_train(self):
        shared = self.steps_per_epoch * self.workers
        step = self.trainer.loop.global_step
        self.trainer.loop.starting_epoch = step // shared + 1
        self.trainer.loop._epoch_num = step // shared
        self.done = step % shared // self.workers
        align_stats(logger.get_logger_dir(), self.trainer.loop.starting_epoch)


class TimedModelSaver(ModelSaver):
    """tensorpack's ModelSaver (a checkpoint at every epoch end), plus one whenever ``minutes`` have passed since the
    last save (0: epoch ends only)."""

    def __init__(self, minutes, **kwargs):
        super().__init__(**kwargs)
        self.seconds = 60.0 * minutes
        self._saves = 0
        self._kill_at = int(os.environ.get(KILL_IN_SAVE_ENV, "0") or 0)

    def _before_train(self):
        super()._before_train()
        self._last = time.monotonic()

    def _trigger_step(self):
        if self.seconds > 0 and time.monotonic() - self._last >= self.seconds:
            self._trigger()

    def _trigger(self):
        self._saves += 1
        if self._saves == self._kill_at:
            self.saver.save(tf.compat.v1.get_default_session(), self.path,
                            global_step=tf.compat.v1.train.get_global_step(), write_meta_graph=False, write_state=False)
            os.kill(os.getpid(), signal.SIGKILL)
        super()._trigger()
        self._last = time.monotonic()


class BestSaver(MaxSaver):
    """tensorpack's MaxSaver (a copy of the checkpoint with the highest ``monitor_stat``) that survives restarts.

    MaxSaver forgets the best value when the process ends, so the first epoch after a resume would overwrite the
    best checkpoint with whatever it scored; here the best so far is read back from stats.json. The copy is written
    under temporary names and renamed into place (data file, then index), so a kill leaves the old copy readable.
    """

    def _before_train(self):
        path = os.path.join(self.checkpoint_dir, "stats.json")
        if os.path.isfile(path):
            with open(path) as f:
                scored = [(s["global_step"], s[self.monitor_stat]) for s in json.load(f) if self.monitor_stat in s]
            if scored:
                self.best = max(scored, key=lambda sv: sv[1])

    def _save(self):
        path = latest_in(self.checkpoint_dir)
        if path is None or not path.endswith(f"-{self.best[0]}"):
            logger.warn(f"{self.monitor_stat} improved at step {self.best[0]}, but the newest checkpoint is {path}")
            return
        target = os.path.join(self.checkpoint_dir, self.filename)
        files = sorted(tf.io.gfile.glob(path + ".*"), key=lambda f: f.endswith(".index"))  # the index last
        for src in files:
            tf.io.gfile.copy(src, src.replace(path, target) + ".tmp", overwrite=True)
        for src in files:
            os.replace(src.replace(path, target) + ".tmp", src.replace(path, target))
        logger.info(f"Model at global_step={self.best[0]} with maximum {self.monitor_stat}={self.best[1]:.5g} saved.")


class PausedTime:
    """Seconds this process spent stopped (SIGSTOP, e.g. a paused campaign, or a suspended machine), measured by a
    daemon thread that wakes every ``tick`` seconds: a wake-up later than ``tick + slack`` means every thread was held.
    A niced thread on a busy machine still runs within milliseconds, so a few seconds of slack never count a busy
    machine as a pause."""

    def __init__(self, tick=1.0, slack=4.0):
        self.tick, self.slack = tick, slack
        self._seconds = 0.0
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="PausedTime", daemon=True).start()

    def _watch(self):
        last = time.monotonic()
        while True:
            time.sleep(self.tick)
            now = time.monotonic()
            if now - last > self.tick + self.slack:
                with self._lock:
                    self._seconds += now - last - self.tick
            last = now

    @property
    def seconds(self):
        with self._lock:
            return self._seconds


class TrainingClock(Callback):
    """``train/hours``: wall-clock hours of training (steps, validation, saves) behind the current checkpoint,
    summed over every process that continued the run, written to the monitors (stats.json, TensorBoard) at each
    epoch end. Time the process spent stopped (``PausedTime``) does not count. A resumed run starts from the last
    value in stats.json (already cut back to its checkpoint)."""

    def _before_train(self):
        path = os.path.join(logger.get_logger_dir(), "stats.json")
        self.hours = 0.0
        if os.path.isfile(path):
            with open(path) as f:
                past = [s["train/hours"] for s in json.load(f) if "train/hours" in s]
            self.hours = past[-1] if past else 0.0
        self._paused = PausedTime()
        self._last = time.monotonic() - self._paused.seconds

    def _trigger_epoch(self):
        now = time.monotonic() - self._paused.seconds
        self.hours += (now - self._last) / 3600
        self._last = now
        self.trainer.monitors.put_scalar("train/hours", self.hours)
