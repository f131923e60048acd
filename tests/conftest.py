"""Shared fixtures: the shipped LSP sample and small folders built in the LSP/LSPET layouts."""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io

import cpm  # noqa: F401  (TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from dataflow.datasets import SAMPLE_LSP_DIR

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args):
    """Run ``scripts/<script>`` as a user would; returns the CompletedProcess (stdout, stderr as text)."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args], capture_output=True,
                          text=True, timeout=600)


def write_lsp_folder(root, joints, image_digits=4, image_size=(120, 80)):
    """An LSP-layout folder with a ``joints`` array as given and one small grey image per entry."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    scipy.io.savemat(os.path.join(root, "joints.mat"), {"joints": joints})
    first = os.path.join(root, "images", f"im{1:0{image_digits}d}.jpg")
    cv2.imwrite(first, np.full(image_size + (3,), 100, np.uint8))
    for k in range(2, joints.shape[-1] + 1):
        os.link(first, os.path.join(root, "images", f"im{k:0{image_digits}d}.jpg"))
    return root


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
    """A run directory trained by ``scripts/train.py --smoke`` (8 steps): real weights for evaluate/predict/export."""
    logdir = str(tmp_path_factory.mktemp("trained") / "run")
    proc = run("train.py", "--smoke", "--logdir", logdir, "--seed", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return logdir


@pytest.fixture(scope="session")
def small_lsp(tmp_path_factory, sample_joints):
    """The first 12 sample people as their own LSP folder (real images and joints)."""
    root = tmp_path_factory.mktemp("lsp12")
    os.makedirs(root / "images")
    for k in range(1, 13):
        shutil.copy(os.path.join(SAMPLE_LSP_DIR, "images", f"im{k:04d}.jpg"), root / "images" / f"im{k:04d}.jpg")
    scipy.io.savemat(root / "joints.mat", {"joints": sample_joints[:, :, :12]})
    return str(root)
