import os

import numpy as np
import pytest
import scipy.io

from cpm.errors import UserError
from cpm.joints import JOINT_INDEX, OCCLUDED, UNANNOTATED, VISIBLE
from dataflow.datasets import SAMPLE_LSP_DIR, load_records
from dataflow.lsp import read_lsp
from tests.helpers import SHARED_DATA, write_lsp_folder

# im0001 of LSP, as stored in the release's joints.mat (0-based px): right ankle, left wrist, head top.
IM0001 = {"right_ankle": (29.74645941, 143.34544031), "left_wrist": (53.85588112, 58.96246433),
          "head_top": (38.9884044, 15.56550525)}


def test_lsp_layout_im0001_joints():
    r = read_lsp(SAMPLE_LSP_DIR, "train")[0]
    assert r.image.endswith("im0001.jpg") and r.dataset == "lsp"
    for name, xy in IM0001.items():
        np.testing.assert_allclose(r.joints[JOINT_INDEX[name], :2], xy, atol=1e-4)
    assert (r.joints[:, 2] == VISIBLE).all()  # LSP's flag row is all 0 (= not occluded) for im0001
    # Centre and scale from the joints' extent: longest side (y: 15.57..143.35) / 200.
    np.testing.assert_allclose(r.scale, (143.34544031 - 15.56550525) / 200, rtol=1e-5)
    np.testing.assert_allclose(r.center[1], (143.34544031 + 15.56550525) / 2, rtol=1e-5)


def test_lsp_occlusion_flag_means_occluded(sample_joints):
    records = read_lsp(SAMPLE_LSP_DIR, "all")
    flags = sample_joints[2].T  # N x 14, LSP order
    # LSP right ankle is LSP index 0 and model joint "right_ankle".
    ra = JOINT_INDEX["right_ankle"]
    got = np.array([r.joints[ra, 2] for r in records])
    np.testing.assert_array_equal(got, np.where(flags[:, 0] == 1, OCCLUDED, VISIBLE))
    assert (got == OCCLUDED).any() and (got == VISIBLE).any()


def test_lspet_layout_same_joints_and_unannotated(lspet_folder):
    records = read_lsp(lspet_folder, "train")
    assert len(records) == 5 and records[0].image.endswith("im00001.jpg") and records[0].dataset == "lspet"
    r = records[0]
    ra = JOINT_INDEX["right_ankle"]
    assert r.joints[ra, 2] == UNANNOTATED and (r.joints[ra, :2] == 0).all()
    for name in ("left_wrist", "head_top"):
        np.testing.assert_allclose(r.joints[JOINT_INDEX[name], :2], IM0001[name], atol=1e-4)
        assert r.joints[JOINT_INDEX[name], 2] == VISIBLE


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "lspet")), reason="needs ../shared/data")
def test_real_lspet_im00001():
    r = read_lsp(os.path.join(SHARED_DATA, "lspet"), "train")[0]
    assert r.joints[JOINT_INDEX["right_ankle"], 2] == UNANNOTATED
    np.testing.assert_allclose(r.joints[JOINT_INDEX["right_knee"]], (26.03094352, 86.41022512, VISIBLE), atol=1e-4)
    np.testing.assert_allclose(r.joints[JOINT_INDEX["head_top"]], (116.56859752, 53.42206246, VISIBLE), atol=1e-4)


def test_split_sizes_of_the_sample():
    assert len(load_records("lsp", SAMPLE_LSP_DIR, "train")) == 700
    assert len(load_records("lsp", SAMPLE_LSP_DIR, "all")) == 700
    with pytest.raises(UserError, match="split 'test'.*700 entries"):
        read_lsp(SAMPLE_LSP_DIR, "test")


def test_split_sizes_of_a_full_release(tmp_path, sample_joints):
    joints = np.tile(sample_joints[:, :, :1], (1, 1, 2000))
    write_lsp_folder(str(tmp_path), joints)
    train, test, every = (read_lsp(str(tmp_path), s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(every)) == (1000, 1000, 2000)
    assert train[-1].image.endswith("im1000.jpg") and test[0].image.endswith("im1001.jpg")
    assert test[-1].image.endswith("im2000.jpg")


def test_image_range_splits(tmp_path, sample_joints):
    write_lsp_folder(str(tmp_path), np.tile(sample_joints[:, :, :1], (1, 1, 1000)))
    train, val = read_lsp(str(tmp_path), "1-800"), read_lsp(str(tmp_path), "801-1000")
    assert (len(train), len(val)) == (800, 200)
    assert train[-1].image.endswith("im0800.jpg") and val[0].image.endswith("im0801.jpg")
    assert val[-1].image.endswith("im1000.jpg")
    for bad in ("0-10", "900-1001", "20-10"):
        with pytest.raises(UserError, match=f"LSP split '{bad}': need 1 <= A <= B <= 1000"):
            read_lsp(str(tmp_path), bad)


def test_lspet_has_no_test_split(lspet_folder):
    with pytest.raises(UserError, match="LSPET.*no 'test' split"):
        read_lsp(lspet_folder, "test")


def test_errors_name_the_culprit(tmp_path, sample_joints):
    with pytest.raises(UserError, match="does not exist"):
        read_lsp(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="joints.mat not found"):
        read_lsp(str(tmp_path))
    write_lsp_folder(str(tmp_path / "ok"), sample_joints[:, :, :3])
    with pytest.raises(UserError, match="unknown LSP split 'val'.*or an image range A-B"):
        read_lsp(str(tmp_path / "ok"), "val")
    os.remove(tmp_path / "ok" / "images" / "im0002.jpg")  # one missing image costs that image only, later
    assert [os.path.basename(r.image) for r in read_lsp(str(tmp_path / "ok"))] == ["im0001.jpg", "im0002.jpg",
                                                                                   "im0003.jpg"]
    with pytest.raises(UserError, match=r"^none of the 1 images of split '2-2' of .* exists \(the first: .*im0002"):
        read_lsp(str(tmp_path / "ok"), "2-2")
    scipy.io.savemat(tmp_path / "ok" / "joints.mat", {"joints": np.zeros((2, 14, 3))})
    with pytest.raises(UserError, match=r"shape \(2, 14, 3\); expected LSP \(3, 14, N\) or LSPET \(14, 3, N\)"):
        read_lsp(str(tmp_path / "ok"))
    scipy.io.savemat(tmp_path / "ok" / "joints.mat", {"points": np.zeros((3, 14, 3))})
    with pytest.raises(UserError, match="no variable 'joints'"):
        read_lsp(str(tmp_path / "ok"))
    (tmp_path / "ok" / "joints.mat").write_text("not a mat file")
    with pytest.raises(UserError, match="not a readable MATLAB file"):
        read_lsp(str(tmp_path / "ok"))
    with pytest.raises(UserError, match="unknown dataset 'flic'"):
        load_records("flic", str(tmp_path), "train")
