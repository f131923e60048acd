"""The scripts as a user runs them: exit status, one-line errors and the files they write."""
import cv2
import pytest

from tests.helpers import SMALL_CPM, run


@pytest.mark.slow
def test_show_data_writes_a_grid(tmp_path):
    out = tmp_path / "grid.png"
    proc = run("show_data.py", "--data", "lsp", "--split", "train", "--out", str(out), "--n", "3")
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(out))
    # 3 tiles of (crop | beliefs | part targets), 2 per row, at the cpu preset's 184 px (what make train trains)
    assert image.shape == (2 * 184, 6 * 184, 3)
    assert "3 crops of lsp train (700 people)" in proc.stdout


@pytest.mark.slow
def test_show_data_without_part_stages_has_two_panels(tmp_path):
    out = tmp_path / "grid.png"
    proc = run("show_data.py", "--out", str(out), "--n", "1", "--preset", "paper", "--config", "MODEL.PART_STAGES=0")
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(out)).shape == (368, 2 * 368, 3)


@pytest.mark.slow
def test_bad_dataset_folder_is_one_line(tmp_path):
    proc = run("show_data.py", "--datadir", str(tmp_path / "missing"), "--out", str(tmp_path / "g.png"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: LSP folder {tmp_path / 'missing'} does not exist"
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_unknown_config_key_is_one_line(tmp_path):
    proc = run("show_data.py", "--out", str(tmp_path / "g.png"), "--config", "AUG.ROTATE=3")
    assert proc.returncode == 2 and "error: unknown config key 'AUG.ROTATE'" in proc.stderr


@pytest.mark.slow
def test_benchmark_predict_times_the_shipped_model_against_a_peer_figure():
    proc = run("benchmark.py", "predict", "--n", "3", "--peer", "100000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CPU: " in proc.stdout and "predict: the shipped model, 184px input, fp32, parts drawn around the joints" \
        in proc.stdout
    assert "(target <= 1x: met)" in proc.stdout


@pytest.mark.slow
def test_benchmark_train_prints_the_ratio_to_the_peer():
    proc = run("benchmark.py", "train", "--batch", "2", "--steps", "1", "--warmup", "0", "--peer", "1e-6", "100000",
               *SMALL_CPM)
    assert proc.returncode == 0, proc.stderr[-2000:]
    step, inference = [line for line in proc.stdout.splitlines() if "s/batch" in line]
    assert "(target <= 0.8x: missed)" in step and "(target <= 0.8x: met)" in inference
    # quiet: five lines of figures (the last one crop's prediction); no TensorFlow start-up lines, no layer table
    # (that is --verbose)
    assert len(proc.stdout.splitlines()) == 5 and proc.stderr == ""
    assert proc.stdout.splitlines()[-1].endswith("ms/person (one crop, the inference graph)")
