"""Every output is written whole or not at all, a refused write (full disk, read-only folder) is one line naming the
path and the space left, and evaluate and convert_tfrecord carry on past images they cannot read (issue 37)."""
import errno
import hashlib
import json
import os
import re
import shutil

import numpy as np
import pytest

from cpm.errors import SOME_SKIPPED, UserError
from cpm.files import DiskFull, staged, write_failed, write_json
from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.lsp import read_lsp
from eval.metrics import pose_scores
from tests.helpers import fill, run

PHOTO = os.path.join(SAMPLE_LSP_DIR, "images", "im0003.jpg")
BBOX = "20,5,100,150"
FREE = r"[0-9.]+ (bytes|kB|MB|GB) free"


def _last_error(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


def _leftovers(folder):
    """Temporary names a staged write would leave."""
    return [os.path.join(d, n) for d, dirs, files in os.walk(folder) for n in dirs + files
            if ".partial-" in n or ".old-" in n]


def _digests(folder):
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in os.listdir(folder)}


def test_a_staged_file_or_folder_appears_whole_and_a_failure_keeps_what_was_there(tmp_path):
    path = str(tmp_path / "out.json")
    write_json(path, {"a": 1})
    with pytest.raises(RuntimeError), staged(path) as tmp:  # any failure: the old file stays, the temporary goes
        open(tmp, "w").write("{half")
        raise RuntimeError("stop")
    assert json.load(open(path)) == {"a": 1} and os.listdir(tmp_path) == ["out.json"]

    folder = tmp_path / "model"
    with staged(str(folder), folder=True) as tmp:
        open(os.path.join(tmp, "weights.npz"), "w").write("1")
        assert not folder.exists()  # nothing at the path until the folder is whole
    (folder / "notes.txt").write_text("the user's")
    with staged(str(folder), folder=True) as tmp:
        open(os.path.join(tmp, "weights.npz"), "w").write("2")
    assert sorted(os.listdir(folder)) == ["notes.txt", "weights.npz"] and (folder / "weights.npz").read_text() == "2"
    with pytest.raises(DiskFull, match=rf"^no space left on the device writing {re.escape(str(folder))} \({FREE}\)$"):
        with staged(str(folder), folder=True) as tmp:
            open(os.path.join(tmp, "weights.npz"), "w").write("3")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (folder / "weights.npz").read_text() == "2" and sorted(os.listdir(tmp_path)) == ["model", "out.json"]


def test_a_folder_staged_onto_a_mount_point_is_built_inside_it(small_disk):
    (small_disk / "old.txt").write_text("old")
    with staged(str(small_disk), folder=True) as tmp:
        assert os.path.dirname(tmp) == str(small_disk)  # its parent is another file system: no rename across
        open(os.path.join(tmp, "old.txt"), "w").write("new")
    assert sorted(os.listdir(small_disk)) == ["old.txt"] and (small_disk / "old.txt").read_text() == "new"


def test_refused_writes_are_named_with_the_space_left(tmp_path):
    path = str(tmp_path / "x")
    assert re.fullmatch(rf"cannot write {re.escape(path)}: Read-only file system \({FREE}\)",
                        str(write_failed(path, OSError(errno.EROFS, "Read-only file system"))))
    # TensorFlow's errors carry no errno: their words decide
    tf_like = RuntimeError(f"{path}/variables/variables.data-00000-of-00001.tempstate1; No space left on device")
    assert isinstance(write_failed(path, tf_like), DiskFull)
    assert type(write_failed(path, OSError(errno.EACCES, "Permission denied"))) is UserError


@pytest.mark.slow
def test_every_output_in_a_read_only_folder_is_one_line_before_any_model_loads(read_only_disk, trained_run,
                                                                                small_lsp):
    existing, new = read_only_disk / "existing", read_only_disk / "new"
    lsp = ("--data", "lsp", "--datadir", small_lsp, "--split", "1-12")
    cases = [
        (("export.py", "--out", str(existing)), "--out", existing, "write in"),
        (("export.py", "--out", str(new)), "--out", new, "create"),
        (("ship.py", "--run", trained_run, "--out", str(existing), *lsp), "--out", existing, "write in"),
        (("predict.py", "--image", PHOTO, "--bbox", BBOX, "--out-json", str(existing / "p.json")), "--out-json",
         existing, "write in"),
        (("predict.py", "--image", PHOTO, "--bbox", BBOX, "--out-image", str(new / "p.png")), "--out-image", new,
         "create"),
        (("evaluate.py", *lsp, "--out-json", str(existing / "r.json")), "--out-json", existing, "write in"),
        (("evaluate.py", *lsp, "--out-plots", str(existing)), "--out-plots", existing, "write in"),
        (("convert_tfrecord.py", *lsp, "--out", str(existing / "x.tfrecord")), "--out", existing, "write in"),
    ]
    for args, flag, folder, verb in cases:
        line = _last_error(run(*args))
        assert re.fullmatch(rf"error: {flag} \S+: cannot {verb} the folder {re.escape(str(folder))} "
                            rf"\(Read-only file system; {FREE}\)", line), (args, line)


@pytest.mark.slow
def test_export_onto_a_full_disk_is_one_line_and_leaves_no_folder(small_disk):
    fill(small_disk, 3_000_000)  # the SavedModel alone needs 9 MB
    out = small_disk / "export"
    line = _last_error(run("export.py", "--load", "models/cpm-lsp", "--out", str(out)))
    assert re.fullmatch(rf"error: no space left on the device writing {re.escape(str(out))} \({FREE}\)", line)
    assert not out.exists() or not os.listdir(out)  # nothing that looks like an export
    assert not _leftovers(small_disk)


@pytest.mark.slow
def test_ship_onto_a_full_disk_keeps_the_model_that_was_there(small_disk, trained_run, small_lsp):
    model = small_disk / "model"
    shutil.copytree("models/cpm-lsp", model)
    before = _digests(model)
    fill(small_disk, 200_000)
    line = _last_error(run("ship.py", "--run", trained_run, "--out", str(model), "--data", "lsp", "--datadir",
                           small_lsp, "--split", "1-12"))
    assert re.fullmatch(rf"error: no space left on the device writing {re.escape(str(model))} \({FREE}\)", line)
    assert _digests(model) == before and not _leftovers(small_disk)


@pytest.mark.slow
def test_predict_evaluate_and_convert_onto_a_full_disk_are_one_line_and_leave_no_file(small_disk, tmp_path,
                                                                                       small_lsp):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(PHOTO, folder / name)
    fill(small_disk, 0)
    lsp = ("--data", "lsp", "--datadir", small_lsp, "--split", "1-12")
    for args, path in [
        (("predict.py", "--image", str(folder), "--bbox", BBOX, "--out-json", str(small_disk / "p.jsonl")),
         small_disk / "p.jsonl"),
        (("predict.py", "--image", str(folder), "--bbox", BBOX, "--out-image", str(small_disk / "drawn")),
         small_disk / "drawn" / "a.jpg"),
        (("evaluate.py", *lsp, "--out-json", str(small_disk / "r.json")), small_disk / "r.json"),
        (("convert_tfrecord.py", *lsp, "--out", str(small_disk / "x.tfrecord")), small_disk / "x.tfrecord"),
    ]:
        line = _last_error(run(*args))
        assert re.fullmatch(rf"error: no space left on the device writing {re.escape(str(path))} \({FREE}\)",
                            line), (args, line)
        assert not path.exists() and not _leftovers(small_disk)


@pytest.fixture
def damaged_lsp(tmp_path, small_lsp):
    """small_lsp's 12 people with image 4 gone and image 9 cut short."""
    root = tmp_path / "lsp"
    shutil.copytree(small_lsp, root)
    os.remove(root / "images" / "im0004.jpg")
    data = (root / "images" / "im0009.jpg").read_bytes()
    (root / "images" / "im0009.jpg").write_bytes(data[:len(data) // 2])
    return str(root)


@pytest.mark.slow
def test_evaluate_scores_the_people_of_an_unreadable_image_wrong_and_carries_on(damaged_lsp, small_lsp, tmp_path):
    args = ("--data", "lsp", "--split", "1-12")
    whole = run("evaluate.py", *args, "--datadir", small_lsp, "--out-predictions", str(tmp_path / "whole.json"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    proc = run("evaluate.py", *args, "--datadir", damaged_lsp, "--out-json", str(tmp_path / "r.json"),
               "--out-predictions", str(tmp_path / "p.json"))
    assert proc.returncode == SOME_SKIPPED, proc.stderr[-2000:]
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped ")]
    images = os.path.join(damaged_lsp, "images")
    assert [line.split(": ")[0] for line in skipped] == [f"skipped {images}/im0004.jpg",
                                                          f"skipped {images}/im0009.jpg"]
    assert skipped[1].endswith("truncated JPEG (no end-of-image marker) (its 1 person scored wrong)")
    assert "2 of 12 images unreadable: their people count as wrong" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert sorted(os.path.basename(p) for p in report["unreadable"]) == ["im0004.jpg", "im0009.jpg"]
    # the 12 people stay the denominator: the whole folder's predictions with people 4 and 9 made wrong score the same
    pred = np.array([p["joints"] for p in json.loads((tmp_path / "whole.json").read_text())["predictions"]],
                    np.float64)
    pred[[3, 8]] = np.nan
    gt = np.stack([r.joints for r in read_lsp(small_lsp, "1-12")])
    from cpm.keypoints import LSP14  # noqa: PLC0415

    assert report["pck@0.2"] == pytest.approx(pose_scores(pred, gt, LSP14)["pck@0.2"], abs=1e-6)
    assert json.loads((tmp_path / "p.json").read_text())["predictions"][3]["joints"][0] == [None, None, None]


@pytest.mark.slow
def test_convert_tfrecord_leaves_out_unreadable_images_and_converts_the_rest(damaged_lsp, tmp_path):
    out = tmp_path / "x.tfrecord"
    proc = run("convert_tfrecord.py", "--data", "lsp", "--datadir", damaged_lsp, "--split", "1-12", "--out", str(out))
    assert proc.returncode == SOME_SKIPPED, proc.stderr[-2000:]
    assert [line.split(": ")[0] for line in proc.stderr.splitlines() if line.startswith("skipped ")] == [
        f"skipped {damaged_lsp}/images/im0004.jpg", f"skipped {damaged_lsp}/images/im0009.jpg"]
    assert "wrote" in proc.stdout and "10 images, 10 people" in proc.stdout and "2 unreadable images skipped" in \
        proc.stdout
    from dataflow.tfrecord import read_tfrecord  # noqa: PLC0415

    assert [os.path.basename(r.image.filename) for r in read_tfrecord(str(out))] == [
        f"im{k:04d}.jpg" for k in range(1, 13) if k not in (4, 9)]


def test_a_link_or_device_is_written_through_and_an_empty_write_is_one_line(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("{}")
    (tmp_path / "link.json").symlink_to(target)
    write_json(str(tmp_path / "link.json"), {"a": 1})  # through the link: the link stays, its file changes
    assert (tmp_path / "link.json").is_symlink() and json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(UserError, match=r"^cannot write .*/out.mp4: nothing was written$"), \
            staged(str(tmp_path / "out.mp4")):
        pass  # a writer that wrote nothing (OpenCV's video writer without its codec)
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_a_missing_validation_image_is_named_before_training(small_lsp, tmp_path):
    from dataflow.records import check_all_images_exist  # noqa: PLC0415

    root = tmp_path / "lsp"
    shutil.copytree(small_lsp, root)
    records = read_lsp(str(root), "1-12")
    check_all_images_exist(records, "validation")
    os.remove(root / "images" / "im0007.jpg")
    with pytest.raises(UserError, match=r"^validation image .*/im0007.jpg is missing: the epoch report scores every "):
        check_all_images_exist(read_lsp(str(root), "1-12"), "validation")
