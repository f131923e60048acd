"""Resuming a run from wherever it was stopped: checkpoints by time as well as by epoch, and mid-epoch restarts.

tensorpack's ModelSaver saves when triggered (at epoch ends) and AutoResumeTrainConfig resumes at the epoch after
the last one in stats.json. With one pass over LSP + LSPET per epoch (~700 steps) a kill on a slow CPU then loses
more than half an hour, and a checkpoint taken inside an epoch would be resumed at the wrong epoch. Here the
checkpoint's own global step says where the run stands: ``resume_point`` turns it into (epoch, steps already done in
that epoch), ``ShortenFirstEpoch`` runs only the rest of that epoch, and ``RunDir.cut_stats`` drops history newer than
the checkpoint, so the step counter and the epochs stay those of an uninterrupted run.

A kill while saving cannot break a resume: TensorFlow writes the checkpoint's files first and then replaces the
``checkpoint`` file that names the newest one atomically (write and rename), so that file always names a complete
checkpoint; partial files of the interrupted save are left behind and overwritten by the next save of that step.
"""
import glob
import os
import signal
import sys
import threading
import time

import tensorflow as tf
import tqdm
from tensorpack.callbacks import Callback, EstimatedTimeLeft, MaxSaver, ModelSaver, ProgressBar
from tensorpack.utils import logger

from cpm.checkpoint import latest_in
from cpm.errors import Interrupted
from engine.hooks import RunStopper
from engine.rundir import RunDir, WriteFailure

#: Fault injection for tests: SIGKILL the process in its k-th checkpoint save (counting from 1), after the
#: checkpoint's files are written and before the ``checkpoint`` file names it.
KILL_IN_SAVE_ENV = "CPM_TEST_KILL_IN_SAVE"


def resume_point(logdir, steps_per_epoch):
    """Where a run in ``logdir`` continues (RunDir.resume_checkpoint: the newest checkpoint, or the last reported
    epoch's end where the newest ends an epoch that was never reported).

    Returns:
        (checkpoint prefix or None, starting epoch (1-based), steps of that epoch already done).
    """
    path, step = RunDir(logdir).resume_checkpoint(steps_per_epoch)
    return path, step // steps_per_epoch + 1, step % steps_per_epoch


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
    reads it, and cuts this worker's stats.json back to the shared step.
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
        RunDir(logger.get_logger_dir()).cut_stats(step)


class ResumedProgressBar(ProgressBar):
    """tensorpack's ProgressBar (one of its default callbacks, which this replaces), counting a resumed epoch on from
    the steps already done ("332/675"), so that its rate and time left are those of the steps still to run;
    tensorpack's counts the shortened epoch from 0 to the whole epoch's steps."""

    def _before_epoch(self):
        left = self.trainer.steps_per_epoch  # ShortenFirstEpoch, an earlier callback, lowered it for a resumed epoch
        self._bar = tqdm.tqdm(total=self._total, initial=self._total - left, **self._tqdm_args)


class ResumedTimeLeft(EstimatedTimeLeft):
    """tensorpack's EstimatedTimeLeft, with a resumed epoch's time scaled up to the whole epoch's steps: taken as it
    is, a half epoch halves the first estimate after a resume."""

    def _before_train(self):
        super()._before_train()
        self._full = self.trainer.steps_per_epoch

    def _before_epoch(self):
        self._share = self.trainer.steps_per_epoch / self._full  # after ShortenFirstEpoch's, as above

    def _trigger_epoch(self):
        if self._share < 1:  # the epoch ran from _last_time; move that back to where a whole epoch would have started
            self._last_time -= (time.time() - self._last_time) * (1 / self._share - 1)
        super()._trigger_epoch()


def at_epochs_last_step(callback):
    """True at its epoch's last step, and through the epoch's end callbacks (the step stays the last one there)."""
    return callback.local_step == callback.trainer.steps_per_epoch - 1


class TimedModelSaver(WriteFailure, ModelSaver):
    """tensorpack's ModelSaver (a checkpoint at every epoch end), plus one whenever ``minutes`` have passed since the
    last save (0: epoch ends only), written with the training clock in stats.json (``clock``, ``stats``): a run killed
    mid-epoch (SIGKILL, a machine's end) resumes with the hours of the steps it keeps. A save that fails (a full disk)
    stops the run with one line; tensorpack's own logs the traceback and trains on without checkpoints. The previous
    checkpoint stays the newest: TensorFlow names a checkpoint in ``checkpoint`` only once its files are written."""

    def __init__(self, minutes, clock, stats, **kwargs):
        super().__init__(**kwargs)
        self.seconds = 60.0 * minutes
        self.clock, self.stats = clock, stats  # the run's TrainingClock and StatsWriter
        self._saves, self.last = 0, None  # last: the newest checkpoint this process wrote
        self._kill_at = int(os.environ.get(KILL_IN_SAVE_ENV, "0") or 0)

    def _before_train(self):
        # (tensorpack's writes a graph-<time>.meta per start, which nothing reads: resuming rebuilds the graph)
        self._last = time.monotonic()

    def _trigger_step(self):
        # not at an epoch's last step, which the epoch end saves: tensorpack's summaries of the epoch are put then
        # (MergeAllSummaries), and stats.json would split them from the epoch's report
        if self.seconds > 0 and time.monotonic() - self._last >= self.seconds and not at_epochs_last_step(self):
            self.checkpoint()

    def _trigger(self):  # an epoch's end: the clock and stats.json write their own epoch entry
        self.save()

    def checkpoint(self):
        """A checkpoint of the current step inside an epoch, with the training clock up to now in stats.json.
        Returns its prefix."""
        path = self.save()
        self.clock.put()
        self.stats.flush()
        return path

    def save(self):
        """Write a checkpoint of the current step now. Returns its prefix."""
        self._saves += 1
        session, step = tf.compat.v1.get_default_session(), tf.compat.v1.train.get_global_step()
        if self._saves == self._kill_at:
            self.saver.save(session, self.path, global_step=step, write_meta_graph=False, write_state=False)
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            path = self.saver.save(session, self.path, global_step=step, write_meta_graph=False)
        except (OSError, tf.errors.OpError) as e:
            self.failed(f"{self.path}-{self.global_step}", e)
        logger.info(f"Model saved to {path}.")
        self._last, self.last = time.monotonic(), path
        return path


class BestSaver(WriteFailure, MaxSaver):
    """tensorpack's MaxSaver (a copy of the checkpoint with the highest ``monitor_stat``) that survives restarts.

    MaxSaver forgets the best value when the process ends, so the first epoch after a resume would overwrite the
    best checkpoint with whatever it scored; here the best so far is read back from stats.json. The copy is written
    under temporary names and renamed into place (data file, then index), so a kill leaves the old copy readable.
    """

    def _before_train(self):
        scored = [(s["global_step"], s[self.monitor_stat]) for s in RunDir(self.checkpoint_dir).stats()
                  if self.monitor_stat in s]
        if scored:
            self.best = max(scored, key=lambda sv: sv[1])

    def _save(self):
        path = latest_in(self.checkpoint_dir)
        if path is None or not path.endswith(f"-{self.best[0]}"):
            logger.warn(f"{self.monitor_stat} improved at step {self.best[0]}, but the newest checkpoint is {path}")
            return
        target = os.path.join(self.checkpoint_dir, self.filename)
        files = sorted(tf.io.gfile.glob(path + ".*"), key=lambda f: f.endswith(".index"))  # the index last
        try:
            for src in files:
                tf.io.gfile.copy(src, src.replace(path, target) + ".tmp", overwrite=True)
            for src in files:
                os.replace(src.replace(path, target) + ".tmp", src.replace(path, target))
        except (OSError, tf.errors.OpError) as e:
            for src in files:
                if os.path.exists(src.replace(path, target) + ".tmp"):
                    os.remove(src.replace(path, target) + ".tmp")
            self.failed(target, e)
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
        self.hours = RunDir(logger.get_logger_dir()).last("train/hours", 0.0)
        self._paused = PausedTime()
        self._last = time.monotonic() - self._paused.seconds

    def _trigger_epoch(self):
        self.put()

    def put(self):
        """Write ``train/hours`` up to now to the monitors."""
        now = time.monotonic() - self._paused.seconds
        self.hours += (now - self._last) / 3600
        self._last = now
        self.trainer.monitors.put_scalar("train/hours", self.hours)


# the stops a person (Ctrl-C, a closed terminal) or a scheduler (preemption) sends
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


_fork_hook = False
_active_stops = []  # the SignalStops whose handlers are installed (a process may train more than once)


def descendants(pid):
    """Pids of every live descendant of process ``pid`` (from /proc/<pid>/task/*/children): the data workers a stop
    must end, and theirs."""
    found, todo = [], [pid]
    while todo:
        for task in glob.glob(f"/proc/{todo.pop()}/task/*/children"):
            try:
                with open(task) as f:
                    kids = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def alive(pid):
    """Whether process ``pid`` runs (a zombie has ended; it only waits for its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _default_signals_in_child():
    """A data worker forked while a run trains does not inherit SignalStop's handlers: it ignores Ctrl-C (the trainer
    stops it, as tensorpack intends) and ends on SIGTERM or SIGHUP (tensorpack's clean-up, a scheduler signalling
    every process, a closed terminal). Outside training a fork is left alone: an ignored SIGINT would survive an
    exec, and a program started later by the same process (a test suite's, a notebook's) could not be stopped by
    Ctrl-C."""
    if not _active_stops:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, signal.SIG_DFL)


class SignalStop(RunStopper):
    """SIGINT (Ctrl-C), SIGTERM (a scheduler preempting the job) and SIGHUP (a closed terminal; left alone where it
    is ignored, as under nohup) stop training cleanly: the step in progress finishes, a checkpoint of it is saved
    with the training clock in stats.json (at an epoch's last step the epoch ends first: its checkpoint, validation
    and stats entry), the data workers stop with the process, and it exits with status 128 +
    the signal (130, 143, 129) after one line. A second signal ends the process
    at once (the signal's own default action: no traceback, no save); the previous checkpoint is still complete.

    The handlers are installed when this is made, so a signal while the run is set up (data read, graph built,
    session started) ends the process at once with one line: there is nothing to save yet. ``attach`` names what
    to save; ``restore`` puts the previous handlers back once training is over.
    """

    _chief_only = False

    def __init__(self):
        self.saver = None
        self.signum, self._training = None, False
        # a signal ignored at the start stays ignored (SIGHUP under nohup)
        self._signals = [s for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
        self._previous = {s: signal.signal(s, self._handle) for s in self._signals}
        _active_stops.append(self)
        global _fork_hook
        if not _fork_hook:
            os.register_at_fork(after_in_child=_default_signals_in_child)
            _fork_hook = True

    def attach(self, saver):
        """The run's TimedModelSaver."""
        self.saver = saver

    def _handle(self, signum, _frame):
        for s in self._signals:  # the next one takes the default action: the process ends, whatever it is doing
            signal.signal(s, signal.SIG_DFL)
        name = signal.Signals(signum).name
        if not self._training:
            raise Interrupted(f"{name} before training started: nothing was saved; the same command starts again",
                              signum)
        self.signum = signum
        when = "once this epoch has ended (checkpoint, validation)" if at_epochs_last_step(self) \
            else "after this step with a checkpoint"
        print(f"{name}: stopping {when} ({name} again to stop at once, without one)", file=sys.stderr, flush=True)

    def _before_train(self):
        self._training = True

    def _trigger_step(self):
        # at an epoch's last step the epoch's end saves, validates and writes its stats entry first (_before_epoch
        # stops then): a checkpoint here would split the epoch's summaries from its report, and resuming would skip
        # the epoch's validation
        if self.signum is None or at_epochs_last_step(self):
            return
        start = time.perf_counter()
        path = self.saver.checkpoint() if self.trainer.is_chief else None
        self.stop(self._interrupted(seconds=time.perf_counter() - start, path=path))

    def _before_epoch(self):
        # came at an epoch's last step or while the epoch ended, whose checkpoint is saved (none yet: a signal just
        # before the first step, which saves after it)
        if self.signum is not None and (self.saver.last or not self.trainer.is_chief):
            self.stop(self._interrupted(self.epoch_num - 1))

    def _after_train(self):
        self._training = False
        # came at the last epoch's last step or end (the run finished), or the epoch's end stopped on another error:
        # the signal's status still ends the process. (Not when another stop came mid-epoch before this one's turn.)
        if self.signum is None or self.error is not None:
            return
        if self.trainer.is_chief:  # the epoch's end saved this step
            ended = (self.saver.last or "").endswith(f"-{self.global_step}")
        else:
            ended = at_epochs_last_step(self)
        if ended:
            self.error = self._interrupted(self.epoch_num)

    def _interrupted(self, epoch=None, seconds=None, path=None):
        """The signal's one-line error: a checkpoint (``path``) saved mid-epoch in ``seconds``, else the end of
        ``epoch`` (its checkpoint the saver's newest); on a cluster's other workers, the step it stopped at."""
        name, step = signal.Signals(self.signum).name, self.global_step
        if not self.trainer.is_chief:
            return Interrupted(f"{name}: stopped at step {step} (the chief keeps the checkpoints); the same command "
                               "resumes", self.signum)
        if path:
            done = f"saved {os.path.basename(path)} at step {step} in {seconds:.1f} s"
        else:
            done = f"stopped at the end of epoch {epoch}, saved as {os.path.basename(self.saver.last)}"
        if epoch == self.trainer.max_epoch:
            return Interrupted(f"{name}: {done}; that was the run's last epoch", self.signum)
        return Interrupted(f"{name}: {done}; the same command resumes", self.signum)

    def restore(self):
        """Put back the handlers that were there before (once training is over)."""
        if self in _active_stops:
            _active_stops.remove(self)
        if self.signum is None:
            for s, handler in self._previous.items():
                signal.signal(s, handler)
