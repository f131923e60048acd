"""scripts/train.py end to end on the shipped sample: smoke run, resume, NaN stop, bad input, and TensorBoard."""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from cpm import checkpoint
from cpm.checkpoint import locate_weights
from cpm.config import ConfigError, build_config
from cpm.errors import UserError
from cpm.keypoints import LSP14
from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.lsp import read_lsp
from engine.cli import selection_text
from engine.rundir import RunDir
from engine.trainer import cosine_schedule, lr_schedule, prepare_logdir, split_validation
from tests.helpers import SMALL_CPM, built_once, run


def stats(logdir):
    with open(os.path.join(logdir, "stats.json")) as f:
        return json.load(f)


def latest_checkpoint(logdir):
    with open(os.path.join(logdir, "checkpoint")) as f:
        return f.readline().split('"')[1]


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory):
    """A smoke run stopped after its first epoch, then the same command with a second epoch allowed: (logdir, the
    first run's CompletedProcess, stats.json after it, the second's)."""
    def build(folder):
        logdir = str(folder / "smoke")
        runs = [run("train.py", "--smoke", "--logdir", logdir, "--seed", "1")]
        (folder / "after_first.json").write_text(json.dumps(stats(logdir)))
        runs.append(run("train.py", "--smoke", "--logdir", logdir, "--seed", "1", "--config", "TRAIN.EPOCHS=2"))
        (folder / "runs.json").write_text(json.dumps([[p.args, p.returncode, p.stdout, p.stderr] for p in runs]))

    folder = built_once(tmp_path_factory, "two_epoch_run", build)
    first, second = (subprocess.CompletedProcess(*p) for p in json.loads((folder / "runs.json").read_text()))
    return str(folder / "smoke"), first, json.loads((folder / "after_first.json").read_text()), second


@pytest.mark.slow
def test_smoke_writes_checkpoint_events_stats_and_config(two_epoch_run):
    logdir, first, after_first, _ = two_epoch_run
    assert first.returncode == 0, first.stderr[-3000:]
    assert glob.glob(os.path.join(logdir, "model-8.index"))
    assert glob.glob(os.path.join(logdir, "max-val-pcp.index"))
    assert glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
    epoch = after_first[-1]
    assert epoch["global_step"] == 8 and 0 <= epoch["val/pcp"] <= 1 and 0 <= epoch["val/pck@0.2"] <= 1
    assert {f"val/pcp/{g}" for g in ("head", "torso", "upper_arm", "lower_arm", "upper_leg", "lower_leg")} <= set(epoch)
    # part stages are on by default: per-part IoU every epoch, next to PCP
    assert {f"val/part_iou/{p}" for p in LSP14.part_names("seed7")} | {"val/mean_part_iou"} <= set(epoch)
    assert 0 <= epoch["val/mean_part_iou"] <= 1
    # speed of the steps alone, the image-summary step (step 0) apart, and of the validation pass
    assert 0.1 < epoch["speed/images_per_s"] < 1000 and epoch["speed/image_summary_s"] > 0  # step 0 also warms up
    assert 0 < epoch["speed/validation_s"] < 120 and 0 < epoch["train/hours"] < 0.2
    assert "part IoU: head" in first.stdout + first.stderr
    with open(os.path.join(logdir, "config.json")) as f:
        saved = json.load(f)
    assert saved["config"]["PRESET"] == "cpu" and saved["config"]["DATA"]["INPUT_SIZE"] == 184
    assert "mean-pose baseline" in first.stdout and "PCP" in first.stdout


@pytest.mark.slow
def test_restart_continues_from_the_saved_step_and_lowers_the_loss(two_epoch_run):
    logdir, _, _, second = two_epoch_run
    assert second.returncode == 0, second.stderr[-3000:]
    history = stats(logdir)
    assert [e["epoch_num"] for e in history] == [1, 2]
    assert [e["global_step"] for e in history] == [8, 16]
    assert latest_checkpoint(logdir) == "model-16"
    assert history[1]["cost"] < history[0]["cost"]  # the moving-average loss falls over the 16 steps
    for u in (1, 2):  # and so does each segmentation stage's
        assert history[1][f"part{u}/loss"] < history[0][f"part{u}/loss"]


@pytest.mark.slow
def test_a_slim_snapshot_resumes_with_a_fresh_optimiser(two_epoch_run, tmp_path):
    logdir = two_epoch_run[0]
    snapshot = str(tmp_path / "snapshot")
    RunDir(logdir).snapshot(snapshot)
    # a checkpoint at every step of the third epoch: each with the training clock, as a kill would leave it
    proc = run("train.py", "--smoke", "--logdir", snapshot, "--seed", "1", "--config", "TRAIN.EPOCHS=3",
               "TRAIN.CHECKPOINT_MINUTES=1e-6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = stats(snapshot)
    assert [e["global_step"] for e in history] == [8, 16, *range(17, 24), 24]  # resumed at 16, not started again
    assert history[-1]["cost"] < history[0]["cost"]  # the weights came back, the fresh Adam did not undo them
    hours = [e["train/hours"] for e in history[2:]]  # from epoch 2's on, rising with each checkpoint
    assert all(e["epoch_num"] == 3 and "val/pck@0.2" not in e for e in history[2:-1])
    assert history[1]["train/hours"] < hours[0] and hours == sorted(hours)


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(two_epoch_run, tmp_path):
    logdir = str(tmp_path / "run")  # a copy: the shared run stays as the fixture made it, whatever the test order
    shutil.copytree(two_epoch_run[0], logdir)
    proc = run("train.py", "--smoke", "--logdir", logdir, "--config", "TRAIN.EPOCHS=3", "TRAIN.LR=1e30")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: loss is ") and "at step" in last and logdir in last
    assert latest_checkpoint(logdir) == "model-16"  # nothing saved from the diverged steps
    assert [e["global_step"] for e in stats(logdir)] == [8, 16]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


@pytest.mark.slow
def test_tensorboard_serves_the_run(two_epoch_run):
    """The real TensorBoard of the set-up, on loopback, reads the run's scalars and image summaries."""
    logdir = two_epoch_run[0]
    port = _free_port()
    tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    server = subprocess.Popen([tensorboard, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
                               "--reload_interval", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base, scalars, images, deadline = f"http://127.0.0.1:{port}/data/plugin", {}, {}, time.time() + 90
        while time.time() < deadline and not ({"val/pcp", "val/pck@0.2"} <= scalars.get(".", set()) and images):
            time.sleep(1)
            try:
                scalars = {run: set(tags) for run, tags in _get_json(f"{base}/scalars/tags").items()}
                images = _get_json(f"{base}/images/tags").get(".", {})
            except OSError:  # not listening yet
                continue
        tags = scalars.get(".", set())
        assert {f"stage{t}/loss" for t in range(1, 7)} | {"part1/loss", "part2/loss", "cost"} <= tags
        assert {"val/pcp", "val/pck@0.2", "val/mean_part_iou", "learning_rate"} <= tags
        assert {"train/skeletons", "train/final_beliefs", "train/parts"} <= set(images)
        points = _get_json(f"{base}/scalars/scalars?run=.&tag=val/pcp")
        assert [p[1] for p in points] == [8, 16]  # one validation per epoch, at the epochs' last steps
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_different_run_in_the_same_logdir_is_refused(two_epoch_run):
    logdir = two_epoch_run[0]
    proc = run("train.py", "--smoke", "--logdir", logdir, "--config", "MODEL.STAGES=3")
    assert proc.returncode == 2 and "MODEL.STAGES differ" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "error: unknown preset 'huge'; choose from paper, cpu, lsp"),
    (["--config", "TRAIN.EPOCH=3"], "error: unknown config key 'TRAIN.EPOCH'"),
    (["--datadir", "/nonexistent/lsp"], "error: LSP folder /nonexistent/lsp does not exist"),
    (["--split", "test"], "error: split 'test' (im1001-im2000) is not in"),
    (["--logdir", "/dev/null/run"],
     "error: --logdir /dev/null/run: cannot create the folder /dev/null/run (Not a directory; "),
    (["--load", "/nonexistent/model-8"], "error: --load /nonexistent/model-8: no such checkpoint"),
])
@pytest.mark.slow
def test_bad_input_is_one_line(args, message):
    proc = run("train.py", "--smoke", *args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in proc.stderr


def test_validation_split_is_held_out_and_stable():
    records = read_lsp(SAMPLE_LSP_DIR, "train")
    train, val = split_validation(records, 0.1)
    assert (len(train), len(val)) == (630, 70)
    assert not {r.image for r in train} & {r.image for r in val}
    assert [r.image for r in split_validation(records, 0.1)[1]] == [r.image for r in val]


def test_lr_schedule_steps_down():
    assert lr_schedule(1.0, [10, 20], 0.5) == [(0, 1.0), (10, 0.5), (20, 0.25)]


def test_cosine_schedule_holds_then_decays_to_the_floor():
    # held at 1 until epoch 2 (step 20), then cos: 0.5 * (1 + cos(pi * k / 2)) = 1, 0.5, 0 at epochs 2, 3, 4
    steps, values = zip(*cosine_schedule(1.0, 2, 4, 0.0, 10), strict=True)
    assert steps == (0, 20, 30, 40) and values == pytest.approx([1.0, 1.0, 0.5, 0.0])
    # from the start, with a floor of 10 %: 0.1 + 0.9 * 0.5 * (1 + cos(pi / 2)) = 0.55 half-way
    steps, values = zip(*cosine_schedule(2.0, 0, 2, 0.1, 5), strict=True)
    assert steps == (0, 5, 10) and values == pytest.approx([2.0, 1.1, 0.2])
    # a one-epoch warm-up from the floor (0.2) to the peak, then the cosine over the three epochs left:
    # 0.2 + 1.8 * 0.5 * (1 + cos(pi * k / 3)) at epochs 1 + k
    steps, values = zip(*cosine_schedule(2.0, 0, 4, 0.1, 10, warmup_epochs=1), strict=True)
    assert steps == (0, 10, 20, 30, 40)
    assert values == pytest.approx([0.2, 2.0, 0.2 + 1.8 * 0.75, 0.2 + 1.8 * 0.25, 0.2])
    # a warm-up before a held rate: up, held until epoch 3, then down
    steps, values = zip(*cosine_schedule(1.0, 3, 4, 0.0, 10, warmup_epochs=1), strict=True)
    assert steps == (0, 10, 30, 40) and values == pytest.approx([0.0, 1.0, 1.0, 0.0])
    with pytest.raises(ConfigError, match="TRAIN.WARMUP_EPOCHS: needs LR_SCHEDULE=cosine"):
        build_config("cpu", ["TRAIN.WARMUP_EPOCHS=1"])


def _saved_run(tmp_path, drop=(), rename=None):
    """A run directory whose config.json lacks the keys in ``drop`` (as if saved before they existed) and has
    ``rename`` = (new, old) saved under its old name."""
    logdir = str(tmp_path / "run")
    assert prepare_logdir(logdir, build_config("cpu"), {})[1] is False
    path = os.path.join(logdir, "config.json")
    with open(path) as f:
        saved = json.load(f)
    for dotted in drop + ((rename[0],) if rename else ()):
        group, key = dotted.split(".")
        value = saved["config"][group].pop(key)
    if rename:
        group, key = rename[1].split(".")
        saved["config"][group][key] = value
    with open(path, "w") as f:
        json.dump(saved, f)
    return logdir


def test_a_run_saved_before_keys_were_added_or_renamed_resumes(tmp_path, monkeypatch):
    logdir = _saved_run(tmp_path, drop=("TRAIN.LR_SCHEDULE", "MODEL.PART_GRADIENT"),
                        rename=("MODEL.STAGE_KERNEL", "MODEL.OLD_KERNEL"))
    monkeypatch.setitem(checkpoint.RENAMED_KEYS, "MODEL.OLD_KERNEL", "MODEL.STAGE_KERNEL")
    assert prepare_logdir(logdir, build_config("cpu"), {})[1] is True
    # the renamed key is still compared: a different value under its new name is a different network
    logdir = _saved_run(tmp_path / "b", rename=("MODEL.STAGE_KERNEL", "MODEL.OLD_KERNEL"))
    with pytest.raises(UserError, match="MODEL.STAGE_KERNEL differ"):
        prepare_logdir(logdir, build_config("cpu", ["MODEL.STAGE_KERNEL=5"]), {})


def test_a_resumed_run_keeps_the_command_that_started_it(tmp_path):
    """A resuming command drops --load (the run resumes from its own checkpoint): config.json keeps the first command
    line, so RunDir.started_from still names the run's starting weights, and each session records its own."""
    logdir = str(tmp_path / "run")
    first = ["--preset", "cpu", "--load", "checkpoints/parent", "--logdir", logdir]
    prepare_logdir(logdir, build_config("cpu"), {"argv": first})
    prepare_logdir(logdir, build_config("cpu"), {"argv": ["--preset", "cpu", "--logdir", logdir]})
    meta = RunDir(logdir).read_meta()
    assert meta["argv"] == first and RunDir.started_from(meta) == "checkpoints/parent"
    assert [s["argv"] for s in meta["sessions"]] == [first, ["--preset", "cpu", "--logdir", logdir]]
    # a run started from Python (engine.trainer.train) has no command line: it started from nothing named
    prepare_logdir(str(tmp_path / "api"), build_config("cpu"), {})
    assert RunDir.started_from(RunDir(str(tmp_path / "api")).read_meta()) is None


@pytest.mark.slow
def test_training_clock_does_not_count_a_stopped_process():
    """PausedTime in a real process SIGSTOPped for 6 s: it reports the stop (within its 1 s tick) and nothing for the
    running time around it, so a paused campaign's train/hours stay those it trained."""
    code = ("import time; from engine.resume import PausedTime; p = PausedTime(); print('ready', flush=True); "
            "time.sleep(10); print(round(p.seconds, 2), flush=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1)
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(6)
    os.kill(proc.pid, signal.SIGCONT)
    paused = float(proc.stdout.readline())
    proc.wait(timeout=30)
    assert 5.0 <= paused <= 7.0, paused


@pytest.mark.slow
def test_sigkilled_runs_resume_leak_nothing_and_finish(tmp_path):
    """benchmark.py resume: a 100-step run SIGKILLed at random moments and once inside a checkpoint save, restarted
    each time. It checks by pid that no process of a killed run lives on, that each restart resumes from the newest
    checkpoint (the step never goes back further), that config.json is unchanged and that the run reaches step 100."""
    proc = run("benchmark.py", "resume", "--kills", "3", "--kill-in-save", "--seed", "1",
               "--logdir", str(tmp_path / "run"), *SMALL_CPM)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3/3 resumed, 0 processes leaked" in proc.stdout
    assert "final step 100" in proc.stdout and "FAILED" not in proc.stdout


@pytest.mark.slow
def test_load_fine_tunes_from_a_model_taking_its_config(trained_run, tmp_path):
    source = trained_run
    logdir = str(tmp_path / "tuned")
    proc = run("train.py", "--smoke", "--load", source, "--logdir", logdir, "--config", "TRAIN.LR=1e-4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(logdir, "config.json")) as f:
        tuned = json.load(f)["config"]
    with open(os.path.join(source, "config.json")) as f:
        original = json.load(f)["config"]
    assert tuned["MODEL"] == original["MODEL"] and tuned["DATA"] == original["DATA"]
    assert tuned["TRAIN"]["LR"] == 1e-4
    assert "Restoring" in proc.stdout  # the model's weights ...
    assert stats(logdir)[-1]["global_step"] == 8  # ... in a new run: its own 8 steps, not the source's 8 + 8
    refused = run("train.py", "--smoke", "--load", source, "--preset", "paper", "--logdir", str(tmp_path / "x"))
    assert refused.returncode == 2 and "was trained with preset cpu" in refused.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_two_towers_train_and_their_checkpoint_serves_one_tower(tmp_path):
    """--gpus 2 on a CPU-only machine: tensorpack's replicated trainer builds two towers (soft placement), each fed
    its own batch of TRAIN.BATCH_SIZE; the loss falls and the checkpoint loads in single-tower prediction."""
    logdir = str(tmp_path / "towers")
    proc = run("train.py", "--smoke", "--gpus", "2", "--logdir", logdir, *SMALL_CPM, "TRAIN.EPOCHS=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Training a model of 2 towers" in proc.stdout and "training tower 1" in proc.stdout
    history = stats(logdir)
    assert [e["global_step"] for e in history] == [8, 16] and history[1]["cost"] < history[0]["cost"]
    # every tower's copy of every variable and optimiser slot equals tower 0's after the steps
    assert all(0 <= e["train/replica_max_diff"] <= 1e-5 for e in history), history
    assert "replicas differ" not in proc.stdout
    from cpm.checkpoint import resolve_checkpoint
    from eval.api import PoseEstimator

    weights, _ = resolve_checkpoint(logdir)
    (person,) = PoseEstimator(logdir)(np.zeros((120, 80, 3), np.uint8), box=(0, 0, 80, 120))
    assert weights.endswith("max-val-pcp") and len(person.joints) == 14


def test_a_card_names_a_data_selection_by_folder_split_and_reader():
    assert selection_text("lsp", "/data/lspet/", "all") == "lspet all (lsp format)"
    assert selection_text("lsp", "../shared/data/lsp", "801-1000") == "lsp 801-1000"


@pytest.mark.slow
def test_ship_writes_weights_card_and_curve_that_score_as_evaluate_does(trained_run, tmp_path):
    source, out = trained_run, tmp_path / "model"
    proc = run("ship.py", "--run", source, "--out", str(out), "--split", "601-632")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"weights.npz", "config.json", "README.md", "curve.png"} <= set(os.listdir(out))
    card = (out / "README.md").read_text()
    report = tmp_path / "report.json"
    scored = run("evaluate.py", "--load", str(out), "--split", "601-632", "--json", str(report))
    assert scored.returncode == 0, scored.stderr[-3000:]
    pck = json.loads(report.read_text())["pck@0.2"]
    assert f"**PCK@0.2 {100 * pck:.1f} %**" in card  # the card's score is the shipped weights' own
    assert re.search(r"Trained (8 steps \(1 epochs|16 steps \(2 epochs); the run's best validation strict PCP", card)
    # the part flow that scored better on validation is the one shipped, and the card shows both
    model = json.loads((out / "config.json").read_text())["config"]["MODEL"]
    if model["PARTS_FROM"] == "skeleton":  # the stages it does not use are left out
        assert model["PART_STAGES"] == 0 and "so this model leaves the part stages out" in card
        assert card.startswith("# model: a Convolutional Pose Machine of 14 joints (lsp14) and the parts drawn around")
    else:
        assert card.startswith("# model: a Convolutional Pose Machine of 14 joints (lsp14) with part segmentation")
    assert "| learned (1 part stage) |" in card and "| drawn around the predicted joints |" in card
    assert "Joints, in output order: head_top, neck, right_shoulder," in card
    assert "601-632: 32 people never trained on" in card and "- Weights: float" in card
    assert "validated on lsp 601-632." in card  # the sample folder is named lsp: no "(lsp format)"
    assert re.search(r"- Time to quality \(.*\): 75 % .*; 80 % (at epoch \d+ \([\d.]+ h\)|not reached \(best [\d.]+ %, "
                     r"epoch \d+(, [\d.]+ h)?\)); 85 % ", card)


@pytest.mark.slow
def test_a_cut_checkpoint_is_passed_over_and_the_run_resumes_from_the_one_before(two_epoch_run, tmp_path):
    logdir = str(tmp_path / "copy")
    shutil.copytree(two_epoch_run[0], logdir, ignore=shutil.ignore_patterns("train.lock"))
    data = os.path.join(logdir, "model-16.data-00000-of-00001")
    with open(data, "r+b") as f:  # a machine that died mid-save: the newest data file cut short
        f.truncate(os.path.getsize(data) // 2)
    os.remove(os.path.join(logdir, "checkpoint"))  # and TensorFlow's state file lost: the files themselves count
    os.remove(os.path.join(logdir, "max-val-pcp.index"))  # the best copy gone too: --load takes the newest intact
    with pytest.raises(UserError, match=r"--load .*model-16: the checkpoint is damaged \(.*\)"):
        locate_weights(os.path.join(logdir, "model-16"))
    assert locate_weights(logdir)[1] == os.path.join(logdir, "model-8")
    resumed = run("train.py", "--smoke", "--logdir", logdir, "--seed", "1", "--config", "TRAIN.EPOCHS=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert "model-16 is damaged" in out and "Traceback" not in out
    assert os.path.isfile(data + ".damaged")  # set aside, not deleted
    assert [e["global_step"] for e in stats(logdir)] == [8, 16]  # epoch 2 ran again from step 8, and reported
    assert RunDir(logdir).latest_checkpoint() == (os.path.join(logdir, "model-16"), 16)  # a new, intact one


@pytest.mark.slow
def test_a_part_head_trains_on_a_frozen_keypoint_network_that_stays_exactly_as_loaded(trained_run, tmp_path):
    import tensorflow as tf  # noqa: PLC0415

    from eval.inference import PosePredictor  # noqa: PLC0415

    logdir, out = str(tmp_path / "head"), str(tmp_path / "export")
    proc = run("train.py", "--smoke", "--load", trained_run, "--logdir", logdir, "--seed", "0", *SMALL_CPM,
               "MODEL.PART_STAGES=0", "MODEL.PART_HEAD=1", "MODEL.FREEZE_KEYPOINTS=True")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, loaded = locate_weights(trained_run)
    _, trained = locate_weights(logdir)
    before, after = tf.train.load_checkpoint(loaded), tf.train.load_checkpoint(trained)
    keypoint_layers = [n for n in before.get_variable_to_shape_map() if n.split("/")[0].startswith(("conv", "stage"))
                       and "Adam" not in n]
    assert len(keypoint_layers) > 20
    for name in keypoint_layers:  # weights and batch-norm statistics alike
        np.testing.assert_array_equal(after.get_tensor(name), before.get_tensor(name), err_msg=name)
    assert any(n.startswith("part_head/fine1") for n in after.get_variable_to_shape_map())
    # the joints score as the loaded checkpoint's did on the same validation people
    loaded_stats = [s for s in RunDir(trained_run).stats() if "val/pck@0.2" in s]
    head_stats = [s for s in RunDir(logdir).stats() if "val/pck@0.2" in s]
    loaded_step = int(before.get_tensor("global_step"))
    assert head_stats[-1]["val/pck@0.2"] == pytest.approx(
        next(s for s in loaded_stats if s["global_step"] == loaded_step)["val/pck@0.2"], abs=1e-6)
    assert "val/mean_part_iou" in head_stats[-1] and "val/skeleton_mean_part_iou" in head_stats[-1]
    # exported, the head runs in LiteRT: parts at stride 4
    exported = run("export.py", "--load", logdir, "--out", out)
    assert exported.returncode == 0, exported.stderr[-3000:]
    weights, cfg = checkpoint.resolve_checkpoint(os.path.join(out, "weights.npz"))
    predictor = PosePredictor(cfg, weights)
    crop = np.full((1, 96, 96, 3), 128, np.uint8)
    beliefs, parts = predictor.outputs(crop, np.stack([predictor.geometry.center_map()]))
    assert beliefs.shape == (1, 12, 12, 15) and parts.shape == (1, 24, 24, 8)


@pytest.mark.slow
def test_weight_averaging_scores_and_hands_on_the_averages(tmp_path):
    """TRAIN.EMA_DECAY: the checkpoint holds each weight's average beside it; the epoch report scores the averages,
    and every reader of the run (evaluate.py here, through cpm.checkpoint.load_weights) uses them too."""
    import tensorflow as tf  # noqa: PLC0415

    from cpm.checkpoint import load_weights  # noqa: PLC0415
    from cpm.names import AVERAGE_SUFFIX  # noqa: PLC0415

    logdir, report = str(tmp_path / "ema"), tmp_path / "r.json"
    proc = run("train.py", "--smoke", "--logdir", logdir, "--seed", "0", "--val-data", "lsp", "--val-split", "601-616",
               *SMALL_CPM, "TRAIN.EMA_DECAY=0.9", "TRAIN.EPOCHS=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, weights = locate_weights(logdir)
    reader = tf.train.load_checkpoint(weights)
    live, average = reader.get_tensor("conv1_1/W"), reader.get_tensor("conv1_1/W" + AVERAGE_SUFFIX)
    assert not np.allclose(live, average)  # 16 steps: the average lags the weights
    values = load_weights(weights)
    np.testing.assert_array_equal(values["conv1_1/W"], average)
    assert not any(n.endswith(AVERAGE_SUFFIX) for n in values) and "global_step" not in values
    scored = run("evaluate.py", "--load", weights, "--split", "601-616", "--json", str(report))
    assert scored.returncode == 0, scored.stderr[-3000:]
    epoch = next(s for s in reversed(RunDir(logdir).stats()) if s["global_step"] == int(reader.get_tensor(
        "global_step")) and "val/pck@0.2" in s)
    assert json.loads(report.read_text())["pck@0.2"] == pytest.approx(epoch["val/pck@0.2"], abs=1e-6)
