import numpy as np
import pytest

from cpm.config import build_config
from cpm.errors import UserError
from cpm.joints import NUM_JOINTS
from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.geometry import Geometry
from dataflow.lsp import read_lsp
from dataflow.mapper import BAD_SAMPLE, make_mapper
from dataflow.pipeline import build_train_dataflow
from dataflow.records import PersonRecord
from dataflow.transforms import apply_affine, crop_affine


@pytest.fixture(scope="module")
def records():
    return read_lsp(SAMPLE_LSP_DIR, "train")[:24]


def _cfg(**train):
    return build_config("paper", [f"TRAIN.{k}={v}" for k, v in train.items()])


@pytest.mark.parametrize("workers", [0, 2])
def test_training_batch_has_the_documented_contract(records, workers):
    ds = build_train_dataflow(records, _cfg(BATCH_SIZE=4, NUM_WORKERS=workers), seed=0)
    ds.reset_state()
    image, beliefs, weights, cmap, parts, part_weight = next(iter(ds))
    assert image.shape == (4, 368, 368, 3) and image.dtype == np.uint8
    assert parts.shape == (4, 46, 46) and parts.dtype == np.uint8 and parts.max() <= 6  # seed7: 6 exclusive parts
    assert part_weight.shape == (4,) and (part_weight == 1).all()
    assert beliefs.shape == (4, 46, 46, NUM_JOINTS + 1) and beliefs.dtype == np.float32
    assert weights.shape == (4, NUM_JOINTS + 1) and weights.dtype == np.float32
    assert cmap.shape == (4, 46, 46, 1) and cmap.dtype == np.float32
    assert 0 <= beliefs.min() and beliefs.max() <= 1 and (weights == 1).all()  # LSP: every joint annotated
    # Background is 1 - max over joints in every crop.
    np.testing.assert_allclose(beliefs[..., -1], np.maximum(1 - beliefs[..., :-1].max(-1), 0), atol=1e-6)


def test_workers_draw_different_augmentations(records):
    ds = build_train_dataflow(records[:1] * 8, _cfg(BATCH_SIZE=8, NUM_WORKERS=2), seed=0)
    ds.reset_state()
    image = next(iter(ds))[0]
    assert len({img.tobytes() for img in image}) == 8


def test_eval_crops_are_deterministic(records):
    mapper = make_mapper(records, Geometry.from_config(_cfg()))
    a, b = mapper(3), mapper(3)
    np.testing.assert_array_equal(a[0], b[0])


def test_training_targets_follow_the_crop(records):
    mapper = make_mapper(records, Geometry.from_config(_cfg()), _cfg().AUG, seed=1)
    crop, beliefs, _, cmap = mapper(0)[:4]
    decoded = mapper.geometry.beliefs.decode(beliefs)
    # Every LSP joint is annotated; those inside the crop have a peak near a non-grey pixel.
    inside = beliefs[:, :, :-1].max(axis=(0, 1)) > 0.5
    assert inside.sum() >= 10
    gy, gx = np.unravel_index(cmap[:, :, 0].argmax(), (46, 46))
    assert abs(gx - 22.5) <= 1 and abs(gy - 22.5) <= 1  # no shift by default: person centre = crop centre
    assert decoded.shape == (NUM_JOINTS, 3)


def test_belief_peaks_sit_on_the_joints_of_the_evaluation_crop(records):
    """The deterministic crop's belief maps decode back to the annotated joints through the crop's affine map: the
    peak cell plus a quarter-cell step is at most a quarter of the 8 px stride (2 px) from the truth."""
    cfg = _cfg()
    mapper = make_mapper(records, Geometry.from_config(cfg))
    for i in range(5):
        r = records[i]
        expected = apply_affine(crop_affine(r.center, r.scale, 368, cfg.DATA.TARGET_DIST), r.joints)[:, :2]
        decoded = mapper.geometry.beliefs.decode(mapper(i)[1])[:, :2]
        assert np.abs(decoded - expected).max() <= 2.0 + 1e-3


def test_corrupt_image_names_the_file(tmp_path, records):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    rec = PersonRecord(str(bad), records[0].joints, records[0].center, records[0].scale, "lsp")
    mapper = make_mapper([rec], Geometry.from_config(_cfg()), _cfg().AUG)
    # a marker, not an exception: raised in a data worker, it would kill the worker and leave the trainer waiting
    assert mapper(0) == [BAD_SAMPLE, f"{bad}: truncated JPEG (no end-of-image marker)"]


def test_too_few_records_for_a_batch(records):
    with pytest.raises(UserError, match="fewer than one batch"):
        build_train_dataflow(records[:3], _cfg(BATCH_SIZE=4))
