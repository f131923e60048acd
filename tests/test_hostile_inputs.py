"""Hostile inputs to predict.py and evaluate.py: each gives valid output (strict JSON, every joint inside its image)
or one line ``error: ...`` with exit status 2."""
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.images import read_image
from eval.metrics import json_safe
from tests.helpers import ROOT, run

PHOTO = os.path.join(SAMPLE_LSP_DIR, "images", "im0003.jpg")
BBOX = "20,5,100,150"


def _png_header_only(path, width, height):
    """A PNG whose header says width x height and whose pixel data is a few bytes: huge to decode, tiny on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) +
                chunk(b"IEND", b""))


def _strict_loads(text):
    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _one_line_error(proc, starts):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and starts in last, last


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """One real photo stored six ways that all show the same picture."""
    root = tmp_path_factory.mktemp("odd")
    bgr = cv2.imread(PHOTO)
    rgb = Image.fromarray(bgr[:, :, ::-1])
    rgb.save(root / "upright.png")
    rgb.save(root / "upright.jpg", quality=95)
    stored = Image.fromarray(np.rot90(np.asarray(rgb)).copy())  # pixels turned 90 degrees anticlockwise ...
    exif = stored.getexif()
    exif[0x0112] = 6  # ... and EXIF orientation 6: "turn 90 degrees clockwise to display"
    stored.save(root / "exif_rotated.jpg", exif=exif, quality=95)
    rgb.convert("L").save(root / "grey.png")
    cv2.imwrite(str(root / "deep16.png"), bgr.astype(np.uint16) * 257)
    rgb.convert("RGBA").save(root / "rgba.png")
    rgb.convert("CMYK").save(root / "cmyk.jpg", quality=95)
    return str(root)


@pytest.mark.slow
def test_odd_but_valid_images_give_strict_json_with_joints_inside(trained_run, odd_images, tmp_path):
    out = tmp_path / "out.jsonl"
    proc = run("predict.py", "--load", trained_run, "--image", odd_images, "--bbox", BBOX, "--out-json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {os.path.basename(r["image"]): r for r in map(_strict_loads, out.read_text().splitlines())}
    assert set(results) == {"upright.png", "upright.jpg", "exif_rotated.jpg", "grey.png", "deep16.png", "rgba.png",
                            "cmyk.jpg"}
    h, w = cv2.imread(PHOTO).shape[:2]
    joints = {}
    for name, r in results.items():
        (person,) = r["people"]
        xy = np.array([[j["x"], j["y"]] for j in person["joints"]])
        assert ((xy >= 0) & (xy <= [w - 1, h - 1])).all(), name  # EXIF applied: the upright picture's size
        joints[name] = xy
    for name in ("deep16.png", "rgba.png"):  # the same pixels in other containers: the same answer
        np.testing.assert_allclose(joints[name], joints["upright.png"], atol=0.01)


def test_exif_orientation_is_applied(odd_images):
    """The EXIF-rotated file decodes to the picture as seen, so joints are found (and reported) on it."""
    seen, upright = read_image(os.path.join(odd_images, "exif_rotated.jpg")), cv2.imread(PHOTO)
    assert seen.shape == upright.shape
    assert np.abs(seen.astype(int) - upright).mean() < 3  # JPEG re-encoding noise only


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not a decodable image"),
    (lambda p: p.write_bytes(open(PHOTO, "rb").read()[:3000]), "truncated JPEG"),
    (lambda p: _png_header_only(p, 20000, 20000), "20000x20000 px is above the 50 MP limit"),
])
@pytest.mark.slow
def test_unusable_images_are_one_line(trained_run, tmp_path, make, message):
    path = tmp_path / ("x.png" if "MP" in message else "x.jpg")
    make(path)
    proc = run("predict.py", "--load", trained_run, "--image", str(path))
    _one_line_error(proc, message)
    if "MP" in message:  # refused from its header: a process reading it never holds the 1.2 GB of its pixels
        probe = ("import resource, sys; from dataflow.images import read_image\ntry: read_image(sys.argv[1])\n"
                 "except Exception: pass\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")

        def peak_kib(image):
            return int(subprocess.run([sys.executable, "-c", probe, str(image)], capture_output=True, text=True,
                                      cwd=ROOT, check=True).stdout.split()[-1])

        # against the same process reading an ordinary photo (TensorFlow's import is most of either)
        assert peak_kib(path) < peak_kib(PHOTO) + 200 * 1024


@pytest.mark.slow
def test_missing_paths_and_empty_folders_are_one_line(trained_run, tmp_path):
    _one_line_error(run("predict.py", "--load", trained_run, "--image", str(tmp_path / "nope.jpg")),
                    "no such file or folder")
    _one_line_error(run("predict.py", "--load", trained_run, "--image", str(tmp_path)), "holds no images")


@pytest.fixture
def damaged_run(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    return run_dir


@pytest.mark.parametrize("damage, message", [
    ("data", "the checkpoint is damaged"),
    ("index", "the checkpoint is damaged"),
    ("config", "is not a run config"),
    ("npz", "cannot load the weights"),
])
@pytest.mark.slow
def test_damaged_models_are_one_line(damaged_run, damage, message):
    load = str(damaged_run)
    if damage in ("data", "index"):
        for name in os.listdir(damaged_run):
            if name.startswith("max-val-pcp.") and name.endswith(".index" if damage == "index" else "0001"):
                with open(damaged_run / name, "r+b") as f:
                    f.truncate(os.path.getsize(damaged_run / name) // 2)
    elif damage == "config":
        (damaged_run / "config.json").write_text('{"config": {"MODEL": ')
    else:
        load = str(damaged_run / "weights.npz")
        (damaged_run / "weights.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    if damage in ("data", "index"):
        # the run directory still serves: its best copy is named damaged and the newest intact checkpoint is used
        posed = run("predict.py", "--load", load, "--image", PHOTO, "--bbox", BBOX)
        assert posed.returncode == 0, posed.stderr[-2000:]
        assert "max-val-pcp is damaged" in posed.stderr and "trying the next" in posed.stderr
        line = next(x for x in posed.stdout.splitlines() if x.startswith("{"))
        assert len(json.loads(line)["people"][0]["joints"]) == 14
        load = str(damaged_run / "max-val-pcp")  # named explicitly, the damaged checkpoint is one line
    _one_line_error(run("predict.py", "--load", load, "--image", PHOTO, "--bbox", BBOX), message)
    if damage == "data":  # evaluate.py loads through the same resolution
        _one_line_error(run("evaluate.py", "--load", load, "--split", "601-610"), message)


def test_json_safe_makes_strict_json():
    value = {"a": float("nan"), "b": [np.float32(1.5), np.inf, (np.int64(2),)], "c": np.array([0.5, -np.inf])}
    assert json.dumps(json_safe(value), allow_nan=False) == '{"a": null, "b": [1.5, null, [2]], "c": [0.5, null]}'


@pytest.mark.slow
def test_a_folder_carries_on_past_files_it_cannot_read(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "c.jpg"):
        shutil.copy(PHOTO, folder / name)
    os.symlink(tmp_path / "gone.jpg", folder / "b.jpg")  # a dangling link
    (folder / "d.png").write_bytes(b"")  # an empty file
    out = tmp_path / "poses.jsonl"
    done = run("predict.py", "--image", str(folder), "--bbox", BBOX, "--out-json", str(out))
    assert done.returncode == 3, done.stderr[-2000:]  # some skipped, the rest complete
    assert "Traceback" not in done.stderr
    skipped = [line for line in done.stderr.splitlines() if line.startswith("skipped ")]
    assert [line.split(":")[0] for line in skipped] == [f"skipped {folder / 'b.jpg'}", f"skipped {folder / 'd.png'}"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [os.path.basename(x["image"]) for x in lines] == ["a.jpg", "b.jpg", "c.jpg", "d.png"]
    assert len(lines[0]["people"][0]["joints"]) == 14 and len(lines[2]["people"]) == 1
    assert "skipped" in lines[1] and "empty file" in lines[3]["skipped"]
    assert done.stdout.strip().splitlines()[-1] == "2 posed, 2 skipped"
