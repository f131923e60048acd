import json

import pytest

from cpm.checkpoint import load_run_config
from cpm.config import ConfigError, finalize, get_config


def test_overrides_keep_types():
    cfg = get_config()
    cfg.override(["AUG.ROTATE_MAX=30", "TRAIN.BATCH_SIZE=8"])
    assert cfg.AUG.ROTATE_MAX == 30.0 and isinstance(cfg.AUG.ROTATE_MAX, float)
    assert cfg.TRAIN.BATCH_SIZE == 8
    with pytest.raises(ConfigError, match="list of numbers"):
        cfg.override(["DATA.JOINT_SIGMAS=[6]*14"])  # an expression, not a literal: never evaluated


def test_literal_lists_and_none():
    cfg = get_config()
    cfg.override(["DATA.JOINT_SIGMAS=" + repr([6] * 14)])
    assert cfg.DATA.JOINT_SIGMAS == [6.0] * 14
    cfg.override(["DATA.JOINT_SIGMAS=None"])
    assert cfg.DATA.JOINT_SIGMAS is None


@pytest.mark.parametrize("pair, message", [
    ("TRAIN.BATCH=8", "unknown config key 'TRAIN.BATCH'"),
    ("NOPE.X=1", "unknown config key 'NOPE.X'"),
    ("TRAIN=1", "unknown config key 'TRAIN'"),
    ("TRAIN.BATCH_SIZE=8.5", "TRAIN.BATCH_SIZE takes a int"),
    ("AUG.FLIP_PROB=yes", "AUG.FLIP_PROB takes a float"),
    ("DATA.JOINT_SIGMAS=[1, 'a']", "list of numbers"),
    ("TRAIN.BATCH_SIZE", "not KEY=VALUE"),
])
def test_bad_overrides_are_named(pair, message):
    with pytest.raises(ConfigError, match=message):
        get_config().override([pair])


def test_finalize_checks_values_and_freezes():
    cfg = get_config()
    cfg.override(["AUG.SCALE_MIN=1.5"])
    with pytest.raises(ConfigError, match="AUG.SCALE_MIN"):
        finalize(cfg)
    cfg = get_config()
    cfg.override(["DATA.JOINT_SIGMAS=[7.0, 7.0]"])
    with pytest.raises(ConfigError, match="DATA.JOINT_SIGMAS"):
        finalize(cfg)
    cfg = finalize(get_config())
    with pytest.raises(ConfigError, match="frozen"):
        cfg.TRAIN.BATCH_SIZE = 4
    assert cfg.to_dict()["DATA"]["INPUT_SIZE"] == 368


def test_runs_from_before_part_segmentation_load_without_part_stages(tmp_path):
    old = get_config("cpu").to_dict()
    del old["MODEL"]["PART_STAGES"], old["MODEL"]["PART_SCHEME"]
    (tmp_path / "config.json").write_text(json.dumps({"config": old}))
    cfg = load_run_config(str(tmp_path))
    assert cfg.MODEL.PART_STAGES == 0 and cfg.DATA.INPUT_SIZE == 184
    assert get_config("cpu").MODEL.PART_STAGES == 2  # new runs have them
