"""A training run's directory: its lock, config.json, stats.json and checkpoints, and the tensorpack writers that
fill it, each written so that a stop of any kind (a signal, kill -9, a full disk) leaves a directory that resumes.

Layout of ``RUN``:
    train.lock                  held (flock) by the one trainer writing the run; names it (pid, host, start)
    config.json                 the run's config, data selection, first command line and sessions (atomic writes)
    stats.json                  one entry per epoch end (and per signal stop): scalars with epoch_num, global_step
    checkpoint, model-N.*       TensorFlow's checkpoints; ``checkpoint`` names the newest complete one
    max-val-pcp.*               the best validation checkpoint (by the keypoint spec's metric: max-val-pckh0.5, ...)
    events.out.tfevents.*       TensorBoard
    log.log                     tensorpack's log
"""
import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import time

import tensorflow as tf
from tensorpack.callbacks import JSONWriter, TFEventWriter
from tensorpack.tfutils.varmanip import is_training_name
from tensorpack.utils import logger

from cpm.checkpoint import CONFIG_FILE, checkpoint_damage, checkpoints_in, locate_weights
from cpm.errors import UserError
from cpm.files import DiskFull, disk_full, is_disk_full, make_dirs, write_json
from cpm.names import AVERAGE_SUFFIX
from engine.hooks import RunStopper

STATS_FILE = JSONWriter.FILENAME
LOCK_FILE = "train.lock"
# The optimiser's state besides its slots (which tensorpack's is_training_name knows): a snapshot leaves them out too,
# so that a resumed Adam starts with its bias correction, as a fresh one does.
OPTIMISER_SCALARS = ("beta1_power", "beta2_power")

_held_locks = {}  # run directory (real path) -> lock fd held by this process; a forked child closes its copies


def _close_locks_in_child():
    for fd in _held_locks.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held_locks.clear()


os.register_at_fork(after_in_child=_close_locks_in_child)


@contextlib.contextmanager
def _full_disk_resumes(path):
    """A full disk while writing the run's own files is the one line that says the same command resumes."""
    try:
        yield
    except DiskFull:
        raise disk_full(path) from None


class RunBusy(UserError):
    """Another live process holds the run directory."""


class RunDir:
    """The files of one run directory (see the module docstring); nothing else opens them."""

    def __init__(self, path):
        self.path = path
        self.config_path = os.path.join(path, CONFIG_FILE)
        self.stats_path = os.path.join(path, STATS_FILE)
        self._lock_fd = None

    def create(self):
        """Make the directory (``mkdir -p``); a one-line error if it cannot be made or written."""
        make_dirs(self.path, f"--logdir {self.path}")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise UserError(f"logdir {self.path} is not writable")

    def lock(self):
        """Hold the run for this process (until it exits, however it ends: the kernel drops an flock with its
        holder, so a trainer killed with -9 blocks no one). Raises RunBusy naming the holder if a live process has
        it. A process that holds the run already (a test training twice) keeps it."""
        key = os.path.realpath(self.path)
        if key in _held_locks:
            self._lock_fd = _held_locks[key]
            return
        path = os.path.join(self.path, LOCK_FILE)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise disk_full(path) if is_disk_full(e) else UserError(f"cannot open {path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 1024).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunBusy(f"run directory {self.path} is in use by {holder}; wait for it to end or use another "
                          f"--logdir") from None
        _held_locks[key] = self._lock_fd = fd
        os.ftruncate(fd, 0)
        try:  # on a full disk the lock holds all the same, unnamed
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                          .encode(), 0)
        except OSError:
            pass

    def unlock(self):
        if self._lock_fd is not None:
            _held_locks.pop(os.path.realpath(self.path), None)
            os.close(self._lock_fd)
            self._lock_fd = None

    # config.json
    def has_config(self):
        return os.path.isfile(self.config_path)

    def read_meta(self):
        """config.json as saved: {"config": ..., "data": ..., "argv": the command line that started the run,
        "sessions": [{"started", "cpu", "precision", "backend", "from_step", "argv"}, ...], ...}."""
        try:
            with open(self.config_path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"{self.config_path} is not a run config: {e}") from None

    def write_meta(self, meta):
        with _full_disk_resumes(self.config_path):
            write_json(self.config_path, meta, indent=2)

    # stats.json
    def stats(self):
        """stats.json's entries, oldest first ([] if there is none)."""
        if not os.path.isfile(self.stats_path):
            return []
        try:
            with open(self.stats_path) as f:
                return json.load(f)
        except ValueError as e:
            raise UserError(f"{self.stats_path} is damaged: {e}") from None

    def set_aside_damaged_stats(self):
        """A stats.json that does not parse (damaged outside the trainer: its writes are atomic) is renamed to
        stats.json.damaged-<time> with a warning, so that the run resumes from its checkpoint with a new history."""
        try:
            self.stats()
        except UserError as e:
            aside = f"{self.stats_path}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(self.stats_path, aside)
            logger.warn(f"{e}; moved to {aside}, the history starts again (the checkpoints are untouched)")

    def write_stats(self, stats):
        with _full_disk_resumes(self.stats_path):
            write_json(self.stats_path, stats)

    def cut_stats(self, step):
        """Drop the entries newer than global step ``step`` (the checkpoint a run resumes from): they describe
        training that the checkpoint lost."""
        stats = self.stats()
        kept = [s for s in stats if s.get("global_step", 0) <= step]
        if len(kept) != len(stats):
            logger.info(f"{STATS_FILE}: dropped {len(stats) - len(kept)} entries newer than the checkpoint")
            self.write_stats(kept)

    def last(self, key, default=None):
        """The newest value of ``key`` in stats.json."""
        return next((s[key] for s in reversed(self.stats()) if key in s), default)

    def last_scores(self):
        """The last epoch's validation scalars with its epoch_num and global_step ({} if none)."""
        stats = self.stats()
        return {k: v for k, v in stats[-1].items() if k.startswith("val/") or k in ("epoch_num", "global_step")} \
            if stats else {}

    @staticmethod
    def started_from(meta):
        """The model a run was started from (the first ``--load`` of config.json's ``argv``), or None."""
        argv = meta.get("argv") or []  # (None: a run started from Python, engine.trainer.train, not a command line)
        return argv[argv.index("--load") + 1] if "--load" in argv[:-1] else None

    def history(self):
        """The validated epochs of this run continued from those of the runs its weights come from.

        Where the ``--load`` the run started from is a run directory (or a checkpoint in one) still at hand, its
        validated epochs up to the checkpoint loaded come first, and this run's follow with ``train/hours`` and
        ``epoch_num`` counted on from there; recursively, so hours and epochs are from scratch.

        Returns:
            (stats.json entries with a validation, oldest first, each with ``run``: the folder of the run it comes
            from, None for this one, and ``trained_on``: the CPU and precision of the sessions that trained its epoch,
            None where config.json does not say; the run folders found before this one, oldest first).
        """
        meta = self.read_meta() if self.has_config() else {}
        stats = [dict(s, run=None) for s in self.stats() if "val/pck@0.2" in s]
        self._label_machines(stats, meta.get("sessions", []))
        start = self.started_from(meta)
        if start is None or not (os.path.isdir(start) or os.path.isfile(start + ".index")):
            return stats, []
        try:
            parent_dir, weights = locate_weights(start)
        except UserError:  # the start's folder holds nothing loadable any more: this run's history alone
            return stats, []
        if weights.endswith(".npz"):  # an exported model: its history is not beside it
            return stats, []
        step = int(tf.train.load_variable(weights, "global_step"))
        parent = RunDir(parent_dir)
        before, runs = parent.history()
        before = [dict(s, run=s["run"] or os.path.basename(os.path.normpath(parent.path)))
                  for s in before if s["global_step"] <= step]
        if not before:
            return stats, []
        hours, epochs = before[-1].get("train/hours"), before[-1]["epoch_num"]
        for s in stats:
            s["epoch_num"] += epochs
            if "train/hours" in s and hours is not None:
                s["train/hours"] += hours
        return before + stats, runs + [parent.path]

    @staticmethod
    def _label_machines(stats, sessions):
        """Set each entry's ``trained_on`` from config.json's sessions: a session trained the steps from its
        ``from_step`` up to the lowest ``from_step`` of the sessions after it (a resume from an older checkpoint
        trains those steps again), an entry the steps since the entry before it."""
        ends, end = [], float("inf")
        for s in reversed(sessions):
            ends.append(end)
            end = min(end, s.get("from_step", 0))
        ends.reverse()
        previous = 0
        for entry in stats:
            step = entry.get("global_step", 0)
            machines = sorted({f"{s['cpu']} ({s['precision']})" for s, end in zip(sessions, ends, strict=True)
                               if s.get("from_step", 0) < min(step, end) and end > previous})
            entry["trained_on"] = " + ".join(machines) or None
            previous = step

    # checkpoints
    def latest_checkpoint(self):
        """(checkpoint prefix, its global step) of the newest checkpoint that restores, or (None, 0).

        The candidates are the ``model-<step>`` files themselves, newest first, so a missing or damaged
        ``checkpoint`` state file costs nothing. One that does not restore (cpm.checkpoint.checkpoint_damage: a data
        file cut short by a machine that died mid-save, an unreadable index) is named in one warning line and set
        aside as ``<name>.damaged`` (so no later step picks it up again), and the next older one is used; the caller
        cuts the run's stats back to it.
        """
        for path, step in checkpoints_in(self.path):
            damage = checkpoint_damage(path)
            if damage is None:
                return path, step
            logger.warn(f"checkpoint {path} is damaged ({damage}): set aside as {os.path.basename(path)}.*.damaged; "
                        f"trying an older one")
            for f in tf.io.gfile.glob(path + ".*"):
                if not f.endswith(".damaged"):
                    os.replace(f, f + ".damaged")
        return None, 0

    def resume_checkpoint(self, steps_per_epoch):
        """(checkpoint prefix, its global step) to continue from, or (None, 0): the newest checkpoint, except one
        that ends an epoch whose report (validation, stats.json entry) was never written, the process having died
        between the two; then the checkpoint of the last reported step, if it is still kept, so that the epoch runs
        again and reports (else the newest, and that epoch goes unreported)."""
        path, step = self.latest_checkpoint()
        reported = self.last("global_step", 0)
        earlier = re.sub(r"-\d+$", f"-{reported}", path or "")  # the saver's own naming, <prefix>-<step>
        if path and step % steps_per_epoch == 0 and 0 < reported < step and os.path.isfile(earlier + ".index"):
            return earlier, reported
        return path, step


    def snapshot(self, dest):
        """Write ``dest`` as a slim copy of the run that resumes: config.json, stats.json and the newest checkpoint
        without the optimiser's state (Adam's two moments per weight are two thirds of a checkpoint). A run resumed
        from it restores everything else and starts the optimiser afresh: tensorpack's restore leaves variables a
        checkpoint lacks at their initial values. ``dest`` is replaced whole.

        Returns:
            (dest's checkpoint prefix, its global step).
        """
        path, step = self.latest_checkpoint()
        if path is None:
            raise UserError(f"{self.path}: no checkpoint to snapshot")
        reader = tf.train.load_checkpoint(path)
        # weight averages are the model a reader uses (cpm.model.AverageWeights), though tensorpack's guess calls a
        # batch-norm statistic's average a training name
        names = sorted(n for n in reader.get_variable_to_shape_map() if n.endswith(AVERAGE_SUFFIX) or
                       (not is_training_name(n) and n not in OPTIMISER_SCALARS))
        staging = dest.rstrip("/") + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        make_dirs(staging, "the snapshot")
        for name in (CONFIG_FILE, STATS_FILE):
            if os.path.isfile(os.path.join(self.path, name)):
                shutil.copy2(os.path.join(self.path, name), staging)
        prefix = os.path.basename(path)
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            variables = {n: tf.compat.v1.Variable(reader.get_tensor(n), name=n) for n in names}
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(variables).save(sess, os.path.join(staging, prefix), write_meta_graph=False,
                                                     write_state=False)
        with open(os.path.join(staging, "checkpoint"), "w") as f:  # relative, as the trainer's saver writes it
            f.write(f'model_checkpoint_path: "{prefix}"\nall_model_checkpoint_paths: "{prefix}"\n')
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(staging, dest)
        return os.path.join(dest, prefix), step


class WriteFailure(RunStopper):
    """Base of the run's writers: a failed write (a full disk above all) stops training with one line, as every
    RunStopper does; the writer writes nothing more afterwards."""

    def failed(self, path, e):
        self.stop(self.error or (e if isinstance(e, UserError) else
                                 disk_full(path) if is_disk_full(e) else UserError(f"cannot write {path}: {e}")))


class StatsWriter(WriteFailure, JSONWriter):
    """tensorpack's JSONWriter (stats.json), written atomically through RunDir; a failed write stops the run with
    one line. It continues the history as the trainer cut it back to the checkpoint (RunDir.cut_stats), whose last
    entry may be a signal stop's inside the epoch that resumes, or an epoch before the last if a kill came between
    a checkpoint and its stats (tensorpack's would move such a history aside and start a new one)."""

    def _before_train(self):
        self._run = RunDir(logger.get_logger_dir())
        self._fname = self._run.stats_path
        self._stats = self._run.stats()
        self._trigger()

    def flush(self):
        """Write what the monitors were given since the last write (at a stop inside an epoch)."""
        self._trigger()

    def _write_stat(self):
        if self.error is not None:
            return
        try:
            self._run.write_stats(self._stats)
        except UserError as e:
            self.failed(self._fname, e)


class EventWriter(WriteFailure, TFEventWriter):
    """tensorpack's TFEventWriter (TensorBoard); a failed write or flush stops the run with one line instead of a
    traceback per event."""

    def _guard(self, write, *args):
        if self.error is not None:
            return
        try:
            write(*args)
        except (OSError, RuntimeError, tf.errors.OpError) as e:
            self.failed(self._logdir, e)

    def process_summary(self, summary):
        self._guard(super().process_summary, summary)

    def process_event(self, evt):
        self._guard(super().process_event, evt)

    def _trigger(self):
        self._guard(super()._trigger)

    def _after_train(self):
        try:
            self._writer.close()
        except (OSError, RuntimeError, tf.errors.OpError):
            pass  # already reported, or the run is stopping for another reason


def quiet_on_full_disk():
    """Keep a full disk to the one line the run's writers stop it with. tensorpack's log.log handler would print a
    traceback for every record it fails to write: it drops the file instead (the console log goes on). TensorFlow's
    event-writer thread would log the error and die with a traceback: the error reaches EventWriter, which reports
    it, so both stay quiet."""
    import logging  # noqa: PLC0415
    import threading  # noqa: PLC0415

    handler = getattr(logger, "_FILE_HANDLER", None)
    if handler is not None:
        handler.handleError = lambda record: setattr(handler, "emit", lambda record: None)
    if getattr(threading.excepthook, "quiet_on_full_disk", False):
        return
    previous = threading.excepthook

    def excepthook(args):
        if not is_disk_full(args.exc_value):
            previous(args)

    excepthook.quiet_on_full_disk = True
    threading.excepthook = excepthook
    logging.getLogger("tensorflow").addFilter(lambda record: not is_disk_full(record.getMessage()))
