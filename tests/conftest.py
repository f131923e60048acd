"""Shared fixtures: the shipped LSP sample and small folders in the LSP/LSPET layouts (helpers: tests/helpers.py)."""
import os
import shutil
import signal

# One backend for the whole suite, whatever this machine measured as its fastest (cpm.backend): the tests' scripts
# then train, score and export as they always have, and the probe does not run inside them (tests/test_backend.py
# checks the choice itself).
os.environ.setdefault("CPM_BACKEND", "onednn")
# Under pytest -n, each worker runs its own test, and so its own TensorFlow, beside the other's: one thread per
# TensorFlow op keeps them from fighting over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import subprocess

import pytest
import scipy.io

from dataflow.datasets import SAMPLE_LSP_DIR
from tests.helpers import SMALL_CPM, built_once, run


@pytest.fixture(scope="session")
def sample_joints():
    """The shipped sample's raw LSP array, (3, 14, 700)."""
    return scipy.io.loadmat(os.path.join(SAMPLE_LSP_DIR, "joints.mat"))["joints"]


@pytest.fixture
def lspet_folder(tmp_path, sample_joints):
    """The first 5 sample entries rewritten in the LSPET layout: (14, 3, N), visibility flag, 5-digit names.

    Entry 1's right ankle is made unannotated the way LSPET stores it (flag 0, coordinates <= 0).
    """
    n = 5
    arr = sample_joints[:, :, :n].transpose(1, 0, 2).copy()  # 14 x 3 x N
    arr[:, 2, :] = 1 - arr[:, 2, :]  # occlusion flag -> visibility flag
    arr[0, :, 0] = [0.0, -26.1, 0.0]
    os.makedirs(tmp_path / "images")
    for k in range(1, n + 1):
        shutil.copy(os.path.join(SAMPLE_LSP_DIR, "images", f"im{k:04d}.jpg"), tmp_path / "images" / f"im{k:05d}.jpg")
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": arr})
    return str(tmp_path)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run directory trained by ``scripts/train.py --smoke`` (8 steps of the small CPM): real weights for
    evaluate/predict/export."""
    def build(folder):
        proc = run("train.py", "--smoke", "--logdir", str(folder / "run"), "--seed", "0", *SMALL_CPM)
        assert proc.returncode == 0, proc.stderr[-3000:]

    return str(built_once(tmp_path_factory, "trained", build) / "run")


@pytest.fixture(scope="session")
def small_lsp(tmp_path_factory, sample_joints):
    """The first 12 sample people as their own LSP folder (real images and joints)."""
    root = tmp_path_factory.mktemp("lsp12")
    os.makedirs(root / "images")
    for k in range(1, 13):
        shutil.copy(os.path.join(SAMPLE_LSP_DIR, "images", f"im{k:04d}.jpg"), root / "images" / f"im{k:04d}.jpg")
    scipy.io.savemat(root / "joints.mat", {"joints": sample_joints[:, :, :12]})
    return str(root)


def _mount_tmpfs(folder, size):
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MB tmpfs (CI runs as root; chmod would not stop root); skipped where it cannot be mounted. Fill it with
    tests.helpers.fill."""
    _mount_tmpfs(tmp_path / "disk", "48m")
    yield tmp_path / "disk"
    subprocess.run(["umount", "-l", str(tmp_path / "disk")], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    """A tmpfs mounted read-only, holding an empty folder ``existing`` (what a user points an output at)."""
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, "4m")
    (disk / "existing").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _put_back_ctrl_c():
    """True if SIGINT was ignored in this process; Python's Ctrl-C handler is back either way."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return ignored


def pytest_configure(config):
    """Tests start programs as a terminal would, with Ctrl-C working, also when the suite itself runs as a background
    job (``make test &``), which ignores SIGINT: an ignored SIGINT is inherited, and the trainers the tests stop with
    Ctrl-C would keep it ignored, as a run started under nohup does."""
    _put_back_ctrl_c()


@pytest.fixture(autouse=True)
def _ctrl_c_left_working():
    """A test that leaves Ctrl-C ignored in the test process fails, and Ctrl-C is put back: an ignored SIGINT is
    inherited by every program the process starts later, whose own Ctrl-C handling then never runs."""
    yield
    if _put_back_ctrl_c():
        pytest.fail("this test left SIGINT ignored in the test process")


def pytest_collection_modifyitems(items):
    """The slow tests (scripts and training in subprocesses, up to two minutes each) first: ``-n 2`` hands tests out in
    this order, and a long test started last would run on one core while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
