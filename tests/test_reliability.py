"""Crash consistency: every stop saves or loses nothing, one trainer per run directory, a full disk, images of any
geometry and output folders that do not exist (docs/reliability.md has the table of faults and these tests)."""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import cv2
import numpy as np
import pytest
import tensorflow as tf

from cpm.config import build_config
from cpm.errors import UserError
from cpm.files import DiskFull, make_parent, write_json
from dataflow.geometry import Geometry
from dataflow.mapper import BAD_SAMPLE, make_mapper
from dataflow.records import PersonRecord
from dataflow.transforms import crop_affine, image_mask, warp_image
from engine.resume import ResumedProgressBar, ResumedTimeLeft, ShortenFirstEpoch, SignalStop, alive, descendants
from engine.rundir import RunBusy, RunDir
from tests.helpers import ROOT, SMALL_CPM, fill, run

STEPS = 1000  # one long epoch, so that every signal lands inside it (500 left too little on 2 busy cores)
TRAIN_ARGS = [*SMALL_CPM, "TRAIN.EPOCHS=1", f"TRAIN.STEPS_PER_EPOCH={STEPS}", "TRAIN.BATCH_SIZE=4",
              "TRAIN.VAL_MAX_PEOPLE=8", "TRAIN.NUM_WORKERS=2", "TRAIN.CHECKPOINT_MINUTES=0"]
SAVED = re.compile(r"^SIG(INT|TERM): saved model-(\d+) at step (\d+) in ([\d.]+) s; the same command resumes$")


def _start(logdir, tmp_path, name):
    """train.py on ``logdir`` in the background; stdout and stderr go to files (read while it runs)."""
    out, err = open(tmp_path / f"{name}.out", "w"), open(tmp_path / f"{name}.err", "w")  # noqa: SIM115
    env = {**os.environ, "TENSORPACK_PROGRESS_REFRESH": "0.2"}  # the progress bar, read to see how far it got
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--logdir", logdir,
                             "--seed", "0", *TRAIN_ARGS], stdout=out, stderr=err, text=True, start_new_session=True,
                            env=env)
    proc.files = (tmp_path / f"{name}.out", tmp_path / f"{name}.err")
    return proc


def _text(proc):
    return "".join(p.read_text() for p in proc.files)


def _wait_for_steps(proc, steps, timeout=300):
    """Wait until the process's progress bar shows that it has taken ``steps`` steps (a resumed epoch's bar counts
    the steps left)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [int(n) for n in re.findall(r"\|(\d+)/\d+\[", proc.files[1].read_text())]
        if done and max(done) >= steps:
            return
        assert proc.poll() is None, _text(proc)[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no progress to step {steps}: {_text(proc)[-3000:]}")


def _last_line(proc):
    lines = [line for line in proc.files[1].read_text().splitlines() if line.strip()]
    return lines[-1]


def _resumed_from(proc):
    found = re.search(r"resuming from \S*model-(\d+): epoch 1, (\d+) of its", _text(proc))
    return int(found.group(1)) if found else None


def _forked_child_ignores_ctrl_c():
    pid = os.fork()
    if pid == 0:  # the child answers in its exit status and ends at once
        os._exit(1 if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else 0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 1


def test_only_a_fork_while_training_ignores_ctrl_c():
    """Data workers forked while a run trains leave Ctrl-C to the trainer; a process forked once training is over
    (a later run's data worker in the same process, a notebook's) is left as it is."""
    stop = SignalStop()
    try:
        during = _forked_child_ignores_ctrl_c()
    finally:
        stop.restore()
    assert (during, _forked_child_ignores_ctrl_c()) == (True, False)
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


class _Saver:
    """TimedModelSaver's face to SignalStop: ``checkpoint()`` saves mid-epoch, ``last`` is the newest save."""

    def __init__(self):
        self.last, self.checkpoints = None, []

    def checkpoint(self):
        self.last = "/run/model-7"
        self.checkpoints.append(self.last)
        return self.last


def test_a_signal_at_an_epochs_last_step_stops_once_the_epoch_has_ended():
    """A signal stops after the step in progress with a checkpoint of it, except at an epoch's last step: there
    the epoch ends first (its checkpoint, validation and stats entry), and the next epoch stops before a step; at
    the last epoch's, the run finishes and still ends with the signal's status."""
    from types import SimpleNamespace

    from tensorpack.train.base import StopTraining

    stop, saver = SignalStop(), _Saver()
    try:
        stop.attach(saver)
        stop.trainer = SimpleNamespace(steps_per_epoch=5, local_step=4, global_step=10, epoch_num=2, max_epoch=3,
                                       is_chief=True)
        stop._before_train()
        stop._before_epoch()  # no signal: nothing happens
        stop.signum = signal.SIGTERM
        stop._trigger_step()  # the epoch's last step: no checkpoint, no stop
        stop._before_epoch()  # nothing saved yet (a signal just before the first step): the next step saves
        assert saver.checkpoints == [] and stop.error is None
        saver.last = "/run/model-10"  # the epoch end's checkpoint
        stop.trainer.epoch_num = 3
        with pytest.raises(StopTraining):
            stop._before_epoch()
        assert str(stop.error) == "SIGTERM: stopped at the end of epoch 2, saved as model-10; the same command resumes"
        assert saver.checkpoints == []
        stop.error, stop.trainer.local_step, stop.trainer.global_step = None, 1, 7  # inside an epoch: a checkpoint
        with pytest.raises(StopTraining):
            stop._trigger_step()
        assert saver.checkpoints == ["/run/model-7"] and SAVED.match(str(stop.error)).group(2, 3) == ("7", "7")
        # at the last epoch's last step the run finishes, then the signal's error ends the process
        stop.error, saver.last, stop.trainer.local_step, stop.trainer.global_step = None, "/run/model-15", 4, 15
        stop._trigger_step()
        stop._after_train()
        assert str(stop.error) == "SIGTERM: stopped at the end of epoch 3, saved as model-15; that was the run's " \
                                  "last epoch"
        # another stop mid-epoch before this one's turn: its own error is the run's
        stop.error, stop.trainer.global_step = None, 13
        stop._after_train()
        assert stop.error is None
        # a cluster's other workers keep no checkpoints and stop at the next epoch's start
        stop.trainer.is_chief, saver.last, stop.trainer.epoch_num, stop.trainer.global_step = False, None, 3, 10
        with pytest.raises(StopTraining):
            stop._before_epoch()
        assert str(stop.error) == "SIGTERM: stopped at step 10 (the chief keeps the checkpoints); the same command " \
                                  "resumes"
    finally:
        stop.signum = None  # a signal leaves its handlers at the default action, for the process to end
        stop.restore()


class _FakeTrainer:
    """The parts of a tensorpack trainer that the resume callbacks read: its loop, and the loop's steps per epoch."""

    def __init__(self, steps_per_epoch, max_epoch):
        self.loop = types.SimpleNamespace(steps_per_epoch=steps_per_epoch)
        self.max_epoch, self.epoch_num, self.local_step = max_epoch, 1, 0

    @property
    def steps_per_epoch(self):  # tensorpack's Trainer delegates it to its loop
        return self.loop.steps_per_epoch


def test_a_resumed_epochs_progress_bar_and_time_left_count_the_steps_done_before():
    """Resumed at 332 of 675 steps, the bar starts at 332/675 and the time left takes the 343 steps run as 343/675
    of an epoch; the next, whole epoch is counted as tensorpack counts it."""
    trainer = _FakeTrainer(675, max_epoch=4)
    shorten, bar, left = ShortenFirstEpoch(332), ResumedProgressBar(), ResumedTimeLeft()
    callbacks = [shorten, left, bar]  # the trainer's order: ours, then tensorpack's defaults
    for c in callbacks:
        c.trainer = trainer
        c._before_train()
    for epoch, seconds, expected_seconds, start in [(1, 100.0, 100.0 * 675 / 343, 332), (2, 150.0, 150.0, 0)]:
        trainer.epoch_num = epoch
        for c in callbacks:
            c._before_epoch()
        assert (bar._bar.n, bar._bar.total, trainer.steps_per_epoch) == (start, 675, 675 - start)
        left._last_time = time.time() - seconds  # the epoch took `seconds`
        for c in callbacks:
            c._after_epoch()
        left._trigger_epoch()
        assert left._times[-1] == pytest.approx(expected_seconds, abs=0.5)
    assert trainer.steps_per_epoch == 675


@pytest.mark.slow
def test_signals_save_and_stop_a_second_trainer_is_refused_and_every_stop_resumes(tmp_path):
    logdir = str(tmp_path / "run")
    # 1. Ctrl-C mid-epoch: the step finishes, model-N is saved, one line, status 130, workers gone
    first = _start(logdir, tmp_path, "first")
    _wait_for_steps(first, 20)
    workers = descendants(first.pid)
    assert len(workers) >= 2
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130, _text(first)[-3000:]
    saved = SAVED.match(_last_line(first))
    assert saved and saved.group(1) == "INT", _last_line(first)
    step = int(saved.group(2))
    assert 20 <= step < STEPS and float(saved.group(4)) <= 10.0
    assert "Traceback" not in _text(first)
    assert RunDir(logdir).latest_checkpoint() == (os.path.join(logdir, f"model-{step}"), step)
    last = RunDir(logdir).stats()[-1]  # the clock of the steps done is kept with the checkpoint
    assert last["global_step"] == step and last["train/hours"] > 0
    time.sleep(1.0)
    assert not [w for w in workers if alive(w)]

    # 2. the same command resumes from that step; a second trainer on the live run is refused naming it
    second = _start(logdir, tmp_path, "second")
    _wait_for_steps(second, 10)
    assert _resumed_from(second) == step
    refused = run("train.py", "--logdir", logdir, "--seed", "0", *TRAIN_ARGS)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: run directory {logdir} is in use by pid {second.pid} on {os.uname().nodename} since "
        f"{refused.stderr.split(' since ')[1].split(';')[0]}; wait for it to end or use another --logdir")
    assert "Traceback" not in refused.stderr
    # ... and SIGTERM, as a scheduler preempts, saves and stops the same way, with status 143
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=120) == 143, _text(second)[-3000:]
    saved = SAVED.match(_last_line(second))
    assert saved and saved.group(1) == "TERM" and int(saved.group(2)) > step + 10
    step = int(saved.group(2))
    assert "Traceback" not in _text(second)

    # 3. a second Ctrl-C stops at once (the signal's own action), without a traceback; the checkpoint is the last
    third = _start(logdir, tmp_path, "third")
    _wait_for_steps(third, 5)
    third.send_signal(signal.SIGINT)
    third.send_signal(signal.SIGINT)
    assert third.wait(timeout=60) in (-signal.SIGINT, 130)
    assert "Traceback" not in _text(third)
    latest, latest_step = RunDir(logdir).latest_checkpoint()
    assert latest_step >= step and tf.train.load_variable(latest, "global_step") == latest_step

    # 4. the run lock went with the stopped process: the same command resumes from the newest checkpoint and
    # finishes the epoch (kill -9 and its resume: test_train.py::test_sigkilled_runs_resume_leak_nothing_and_finish)
    last = _start(logdir, tmp_path, "last")
    assert last.wait(timeout=600) == 0, _text(last)[-3000:]
    assert _resumed_from(last) == latest_step
    assert RunDir(logdir).stats()[-1]["global_step"] == STEPS and "val/pcp" in RunDir(logdir).stats()[-1]


def test_the_run_lock_is_one_per_directory_and_names_its_holder(tmp_path):
    """The lock is an flock held by a live process: another process is refused with its pid and host; once that
    process is gone (killed with -9 here), the lock is free without any clean-up."""
    run_dir = RunDir(str(tmp_path / "run"))
    run_dir.create()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from engine.rundir import RunDir; RunDir(sys.argv[1]).lock(); "
         "print('locked', flush=True); time.sleep(60)", run_dir.path], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunBusy, match=rf"in use by pid {holder.pid} on {re.escape(os.uname().nodename)} since"):
        run_dir.lock()
    holder.kill()
    holder.wait()
    run_dir.lock()  # free again: nothing was left to clean up
    run_dir.lock()  # a process holding it already keeps it
    assert open(os.path.join(run_dir.path, "train.lock")).read().startswith(f"pid {os.getpid()} on ")
    run_dir.unlock()


def test_json_is_replaced_atomically_and_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "stats.json")
    write_json(path, [{"a": 1}])
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFull, match=rf"^no space left on the device writing {re.escape(path)} \(.* free\)"):
        write_json(path, [{"a": 1}, {"a": 2}])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert json.load(open(path)) == [{"a": 1}]
    assert os.listdir(tmp_path) == ["stats.json"]  # no temporary file left behind


@pytest.mark.slow
def test_a_full_disk_is_one_line_keeps_the_checkpoint_and_resumes_once_freed(small_disk):
    logdir = str(small_disk / "run")
    args = ["train.py", "--logdir", logdir, "--seed", "0", *SMALL_CPM, "TRAIN.STEPS_PER_EPOCH=20",
            "TRAIN.BATCH_SIZE=4", "TRAIN.VAL_MAX_PEOPLE=8", "TRAIN.SUMMARY_PERIOD=1000"]
    assert run(*args, "TRAIN.EPOCHS=1").returncode == 0
    before = RunDir(logdir).stats()
    config = open(os.path.join(logdir, "config.json")).read()

    def refused(proc):
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr
        line = proc.stderr.strip().splitlines()[-1]
        assert re.match(rf"^error: no space left on the device writing {re.escape(logdir)}/\S+ \(.+ free\); ", line)
        assert RunDir(logdir).latest_checkpoint() == (os.path.join(logdir, "model-20"), 20)  # still loadable
        assert tf.train.load_variable(os.path.join(logdir, "model-20"), "global_step") == 20
        assert RunDir(logdir).stats() == before
        return line

    fill(small_disk, 0)  # full before the start: config.json is the first write
    assert "config.json" in refused(run(*args, "TRAIN.EPOCHS=2"))
    assert open(os.path.join(logdir, "config.json")).read() == config
    fill(small_disk, 300_000)  # full during the run: the next checkpoint (0.8 MB) does not fit
    refused(run(*args, "TRAIN.EPOCHS=2"))
    os.remove(small_disk / "filler")
    resumed = run(*args, "TRAIN.EPOCHS=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"resuming from \S*model-20: epoch 2", resumed.stdout + resumed.stderr)
    assert RunDir(logdir).stats()[-1]["global_step"] == 40


ODD_SHAPES = [(12, 6000), (6000, 12), (1, 1), (2, 50), (50, 2), (3, 3000)]


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_crops_and_masks_of_any_geometry(shape):
    """The crop of a person box over an image of any shape is a full crop (showing the image where it is at least a
    crop pixel thick), and its mask of the crop pixels that show the image is never empty (decoding needs one)."""
    image = np.full(shape + (3,), 200, np.uint8)
    h, w = shape
    m = crop_affine([(w - 1) / 2, (h - 1) / 2], max(h, w) / 200, 96, 41 / 70)
    crop = warp_image(image, m, 96)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    if min(h, w) * np.sqrt(abs(np.linalg.det(m[:, :2]))) >= 2:
        assert (crop > 164).any()  # the image (200), against the 128 padding (cubic: rings a little)
    assert image_mask(shape, m, 96).sum() >= 1


def test_a_training_record_of_odd_geometry_is_a_sample_or_a_counted_bad_one(tmp_path):
    records = []
    for k, shape in enumerate([(12, 6000), (3, 3000), (6000, 12)]):
        path = str(tmp_path / f"im{k}.png")
        cv2.imwrite(path, np.full(shape + (3,), 120, np.uint8))
        joints = np.zeros((14, 3), np.float32)
        joints[:, 0], joints[:, 1], joints[:, 2] = np.linspace(0, shape[1] - 1, 14), shape[0] / 2, 1
        records.append(PersonRecord(path, joints, np.array([shape[1] / 2, shape[0] / 2], np.float32),
                                    max(shape) / 200, "test"))
    mapper = make_mapper(records, Geometry.from_config(build_config("cpu")), build_config("cpu").AUG, seed=0)
    out = [mapper(i) for i in range(3)]
    assert out[0][0].shape == (184, 184, 3) and out[2][0].shape == (184, 184, 3)
    assert out[1][0] == BAD_SAMPLE and "3000x3 px is too small to train on" in out[1][1]


@pytest.mark.slow
def test_predict_poses_images_of_any_geometry_into_folders_it_makes(trained_run, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for h, w in ODD_SHAPES:
        cv2.imwrite(str(folder / f"{h}x{w}.png"), np.random.default_rng(h * w).integers(0, 255, (h, w, 3), np.uint8))
    out = tmp_path / "new" / "sub"
    proc = run("predict.py", "--load", trained_run, "--image", str(folder), "--out-json", str(out / "p.jsonl"),
               "--out-image", str(out / "drawn"), "--out-coco", str(out / "coco" / "c.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "p.jsonl").read_text().splitlines()]
    assert len(lines) == len(ODD_SHAPES)
    for line in lines:
        h, w = (int(v) for v in os.path.basename(line["image"])[:-4].split("x"))
        (person,) = line["people"]
        xy = np.array([[j["x"], j["y"]] for j in person["joints"]])
        assert len(xy) == 14 and ((xy >= 0) & (xy <= [w - 1, h - 1])).all()
        assert all(j["score"] is not None for j in person["joints"])
        if (h, w) == (1, 1):
            assert line["detected"] is False  # nobody found: the whole image was posed, and the JSON says so
    assert sorted(os.listdir(out / "drawn")) == sorted(f"{h}x{w}.png" for h, w in ODD_SHAPES)
    assert len(json.loads((out / "coco" / "c.json").read_text())) == len(ODD_SHAPES)
    # a folder that cannot be made (a file is in the way): one line naming the flag, before any model is loaded
    blocked = run("predict.py", "--load", trained_run, "--image", str(folder), "--out-json",
                  str(out / "p.jsonl" / "x.json"))
    assert blocked.returncode == 2
    assert re.fullmatch(rf"error: --out-json {re.escape(str(out / 'p.jsonl' / 'x.json'))}: cannot create the folder "
                        rf"{re.escape(str(out / 'p.jsonl'))} \(File exists; [0-9.]+ [kMG]?B free\)",
                        blocked.stderr.strip().splitlines()[-1])


def test_a_folder_that_cannot_be_made_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"^--out-json .*/file/a/b.json: cannot create the folder .*/file/a \("):
        make_parent(str(tmp_path / "file" / "a" / "b.json"), f"--out-json {tmp_path / 'file' / 'a' / 'b.json'}")


def test_a_damaged_stats_json_is_set_aside_and_the_run_resumes_with_a_new_history(tmp_path):
    run_dir = RunDir(str(tmp_path))
    (tmp_path / "stats.json").write_text('[{"epoch_num": 1, "glob')
    with pytest.raises(UserError, match=r"stats.json is damaged"):
        run_dir.stats()
    run_dir.set_aside_damaged_stats()
    assert run_dir.stats() == []
    (aside,) = [p for p in os.listdir(tmp_path) if p.startswith("stats.json.damaged-")]
    assert (tmp_path / aside).read_text() == '[{"epoch_num": 1, "glob'
    run_dir.write_stats([{"epoch_num": 1, "global_step": 5}])
    run_dir.set_aside_damaged_stats()  # a sound history stays
    assert run_dir.stats() == [{"epoch_num": 1, "global_step": 5}]


def test_an_epoch_whose_report_was_never_written_runs_again(tmp_path):
    # A process killed between an epoch's checkpoint and its stats.json entry: the run resumes from the last reported
    # epoch's end (if that checkpoint is kept), not from the unreported one, so that the epoch runs and reports.
    with tf.Graph().as_default():
        step = tf.compat.v1.Variable(0, name="global_step")
        saver = tf.compat.v1.train.Saver(max_to_keep=5)
        with tf.compat.v1.Session() as sess:
            for value in (25, 50, 75):
                sess.run(step.assign(value))
                saver.save(sess, str(tmp_path / "model"), global_step=value)
    run_dir = RunDir(str(tmp_path))
    run_dir.write_stats([{"epoch_num": 1, "global_step": 25}, {"epoch_num": 2, "global_step": 50}])
    newest = (str(tmp_path / "model-75"), 75)
    assert run_dir.resume_checkpoint(25) == (str(tmp_path / "model-50"), 50)  # 75 ends epoch 3, never reported
    assert run_dir.resume_checkpoint(30) == newest  # 75 is mid-epoch there: the newest
    run_dir.write_stats([{"epoch_num": k, "global_step": 25 * k} for k in (1, 2, 3)])
    assert run_dir.resume_checkpoint(25) == newest  # reported
    run_dir.write_stats([{"epoch_num": 1, "global_step": 25}, {"epoch_num": 2, "global_step": 50}])
    os.remove(tmp_path / "model-50.index")
    assert run_dir.resume_checkpoint(25) == newest  # 50 is gone: the newest, its epoch unreported


def test_a_snapshot_keeps_what_resumes_and_leaves_out_the_optimiser(tmp_path):
    run_path, dest = tmp_path / "run", tmp_path / "snapshot"
    with tf.Graph().as_default():
        w = tf.compat.v1.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="conv1/W")
        step = tf.compat.v1.Variable(40, dtype=tf.int64, name="global_step")
        loss = tf.reduce_sum(w * w)
        train_op = tf.compat.v1.train.AdamOptimizer(0.1).minimize(loss)  # slots conv1/W/Adam(_1), beta powers
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(train_op)
            kept = sess.run(w)
            tf.compat.v1.train.Saver().save(sess, str(run_path / "model"), global_step=step)
    RunDir(str(run_path)).write_stats([{"epoch_num": 1, "global_step": 40}])
    (run_path / "config.json").write_text('{"config": {}}')
    (dest / "old").mkdir(parents=True)  # a previous snapshot goes whole
    assert RunDir(str(run_path)).snapshot(str(dest)) == (str(dest / "model-40"), 40)
    assert sorted(os.listdir(dest)) == ["checkpoint", "config.json", "model-40.data-00000-of-00001",
                                        "model-40.index", "stats.json"]
    assert RunDir(str(dest)).latest_checkpoint() == (str(dest / "model-40"), 40)
    reader = tf.train.load_checkpoint(str(dest / "model-40"))
    assert sorted(reader.get_variable_to_shape_map()) == ["conv1/W", "global_step"]
    np.testing.assert_array_equal(reader.get_tensor("conv1/W"), kept)
    assert RunDir(str(dest)).stats() == [{"epoch_num": 1, "global_step": 40}]
    with pytest.raises(UserError, match="no checkpoint to snapshot"):
        RunDir(str(tmp_path / "empty")).snapshot(str(tmp_path / "x"))


def test_a_runs_history_continues_the_hours_and_epochs_of_the_run_it_was_started_from(tmp_path):
    parent, child = tmp_path / "first", tmp_path / "second"
    with tf.Graph().as_default():
        step = tf.compat.v1.Variable(40, dtype=tf.int64, name="global_step")
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, str(parent / "model"), global_step=step)
    val = {"val/pck@0.2": 0.5}
    RunDir(str(parent)).write_stats([dict(val, epoch_num=1, global_step=20, **{"train/hours": 0.5}),
                                     dict(val, epoch_num=2, global_step=40, **{"train/hours": 1.0}),
                                     dict(val, epoch_num=3, global_step=60, **{"train/hours": 1.5})])  # after model-40
    RunDir(str(child)).create()
    RunDir(str(child)).write_meta({"config": {}, "argv": ["--load", str(parent), "--preset", "lsp"]})
    RunDir(str(child)).write_stats([dict(val, epoch_num=1, global_step=10, **{"train/hours": 0.25}),
                                    {"epoch_num": 1, "global_step": 15},  # a signal stop's entry: no validation
                                    dict(val, epoch_num=2, global_step=20, **{"train/hours": 0.5})])
    history, runs = RunDir(str(child)).history()
    assert runs == [str(parent)]
    assert [(s["run"], s["epoch_num"], s["global_step"], s["train/hours"]) for s in history] == [
        ("first", 1, 20, 0.5), ("first", 2, 40, 1.0), (None, 3, 10, 1.25), (None, 4, 20, 1.5)]
    shutil.rmtree(parent)  # the start is gone: the run's own history alone
    assert [(s["epoch_num"], s["train/hours"]) for s in RunDir(str(child)).history()[0]] == [(1, 0.25), (2, 0.5)]
    assert RunDir(str(child)).history()[1] == []
