"""Time to quality: engine.progress on hand-made epoch reports, and scripts/compare_runs.py on run folders."""
import json
import os

import pytest

from engine.progress import first_at, time_to_quality
from tests.helpers import run

# epoch reports as stats.json holds them: validation PCK@0.2 0.70, 0.78, 0.81, 0.79 after 0.5, 1.0, 1.5, 2.0 h
REPORTS = [{"epoch_num": e, "global_step": 10 * e, "train/hours": 0.5 * e, "val/pck@0.2": p}
           for e, p in zip((1, 2, 3, 4), (0.70, 0.78, 0.81, 0.79), strict=True)]


def test_first_report_at_each_level():
    assert first_at(REPORTS, 0.75)["epoch_num"] == 2
    assert first_at(REPORTS, 0.80)["epoch_num"] == 3  # the first at or above, not the last
    assert first_at(REPORTS, 0.85) is None
    assert time_to_quality(REPORTS, (0.8, 0.85)) == \
        "80 % at epoch 3 (1.50 h); 85 % not reached (best 81.0 %, epoch 3, 1.50 h)"


def _run_folder(root, name, reports):
    folder = os.path.join(root, name)
    os.makedirs(folder)
    with open(os.path.join(folder, "stats.json"), "w") as f:
        json.dump(reports, f)
    return folder


@pytest.mark.slow
def test_compare_runs_table_and_plot(tmp_path):
    slow = _run_folder(tmp_path, "slow", REPORTS)
    fast = _run_folder(tmp_path, "fast", [dict(r, **{"train/hours": 0.25 * r["epoch_num"],
                                                     "val/pck@0.2": r["val/pck@0.2"] + 0.05}) for r in REPORTS])
    plot = tmp_path / "plots" / "ttq.png"
    proc = run("compare_runs.py", slow, fast, "--name", "slow", "fast", "--out-plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[0] == "| run | epochs run | 75 % | 80 % | 85 % | best (epoch) |"
    assert rows[2] == "| slow | 4 | epoch 2, 1.00 h | epoch 3, 1.50 h | not reached | 81.0 % (3) |"
    assert rows[3] == "| fast | 4 | epoch 1, 0.25 h | epoch 2, 0.50 h | epoch 3, 0.75 h | 86.0 % (3) |"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _sessions(folder, *sessions):
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"config": {}, "argv": [], "sessions": [{"cpu": c, "precision": p, "from_step": s}
                                                          for c, p, s in sessions]}, f)


@pytest.mark.slow
def test_compare_runs_names_the_machines_of_a_run_trained_on_several(tmp_path):
    # steps 10, 20, 30, 40: CPU A to step 25 (a session that died before a checkpoint, one that resumed), then B
    mixed = _run_folder(tmp_path, "mixed", REPORTS)
    _sessions(mixed, ("A", "bf16", 0), ("C", "bf16", 15), ("A", "bf16", 15), ("B", "fp32", 25), ("B", "fp32", 40))
    # A to step 30, then B from the checkpoint of step 10 again (a damaged one passed over): B trained epochs 2-4
    redone = _run_folder(tmp_path, "redone", REPORTS)
    _sessions(redone, ("A", "bf16", 0), ("A", "bf16", 30), ("B", "fp32", 10))
    one = _run_folder(tmp_path, "one", REPORTS)
    _sessions(one, ("A", "bf16", 0), ("A", "bf16", 20))  # one CPU, and a run without sessions: nothing to say
    plot = tmp_path / "ttq.png"
    proc = run("compare_runs.py", mixed, redone, one, _run_folder(tmp_path, "old", REPORTS), "--out-plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[6:] == [
        f"{mixed}: hours from more than one CPU or precision: epochs 1-2 on A (bf16); epoch 3 on A (bf16) + B (fp32); "
        "epoch 4 on B (fp32)",
        f"{redone}: hours from more than one CPU or precision: epoch 1 on A (bf16); epochs 2-4 on B (fp32)",
        f"wrote {plot}"]


@pytest.mark.slow
def test_compare_runs_refuses_folders_without_validations_and_names_twice(tmp_path):
    proc = run("compare_runs.py", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path}: no stats.json with epoch reports " \
                                                            "(not a run directory?)"
    unvalidated = _run_folder(tmp_path, "early", [{"epoch_num": 1, "global_step": 10, "cost": 1.0}])
    proc = run("compare_runs.py", unvalidated)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {unvalidated}/stats.json has no validation yet"
    proc = run("compare_runs.py", unvalidated, unvalidated)
    assert proc.returncode == 2 and "is given twice" in proc.stderr
