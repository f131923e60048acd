"""Keypoint specs and the geometry built from them: the built-in lsp14, a user's JSON file, bad specs refused in one
line, old configs read as lsp14, and a model whose shapes follow the spec."""
import json
import os

import numpy as np
import pytest

from cpm import names
from cpm.checkpoint import load_run_config
from cpm.config import ConfigError, build_config, flatten
from cpm.errors import UserError
from cpm.joints import JOINT_NAMES, VISIBLE
from cpm.keypoints import COCO17, DEFAULT_OKS_SIGMA, LSP14, MPII16, KeypointSpec, SpecError, load_spec, spec_of
from dataflow.geometry import Geometry
from dataflow.records import PersonRecord, map_records
from dataflow.transforms import transform_joints
from engine.trainer import choose_keypoints, prepare_logdir
from eval.metrics import pck_correct, torso_size
from tests.helpers import build_model

#: six leg joints of a user's own, with a PCP limb per thigh and no part scheme (docs/data.md shows the same form)
LEGS = {"name": "legs6", "joints": ["left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle"],
        "skeleton": [["left_hip", "left_knee"], ["left_knee", "left_ankle"], ["right_hip", "right_knee"],
                     ["right_knee", "right_ankle"], ["left_hip", "right_hip"]],
        "pcp_limbs": [{"name": "left_thigh", "group": "thigh", "a": ["left_hip"], "b": ["left_knee"]},
                      {"name": "right_thigh", "group": "thigh", "a": ["right_hip"], "b": ["right_knee"]}],
        "torso": ["left_hip", "right_hip"]}


def test_lsp14_is_the_shipped_models_set():
    assert LSP14.names == JOINT_NAMES and LSP14.num_joints == 14
    perm = LSP14.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(14))
    assert [LSP14.names[perm[LSP14.index[n]]] for n in ("left_knee", "neck", "right_wrist")] == \
        ["right_knee", "neck", "left_wrist"]
    assert len(LSP14.pairs) == 6 and len(LSP14.skeleton) == 14 and len(LSP14.limbs) == 10
    assert LSP14.groups == ("head", "torso", "upper_arm", "lower_arm", "upper_leg", "lower_leg")
    assert [LSP14.names[i] for i in LSP14.torso] == ["left_shoulder", "right_hip"]
    assert LSP14.part_names("seed7") == ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg", "body")
    # the part flip swaps left_arm (label 3) and right_arm (label 4), and the legs
    assert LSP14.part_flip_permutation("seed7") == (0, 1, 3, 2, 5, 4)
    assert LSP14.oks_sigmas == (DEFAULT_OKS_SIGMA,) * 14 and LSP14.sigmas == (1.0,) * 14


def test_a_spec_survives_a_round_trip_through_json():
    d = json.loads(json.dumps(LSP14.to_dict()))
    assert d == LSP14.to_dict()  # lists only: a config.json compares equal to the config it was written from
    again = KeypointSpec.from_dict(d)
    assert again.to_dict() == d and again.limbs == LSP14.limbs and again.parts("limbs") == LSP14.parts("limbs")


def test_a_users_spec_from_a_file(tmp_path):
    path = tmp_path / "legs.json"
    path.write_text(json.dumps(LEGS))
    spec = load_spec(str(path))
    assert spec.name == "legs6" and spec.num_joints == 6
    # twins from the names: left_hip (0) <-> right_hip (3), ...
    assert spec.pairs == ((0, 3), (1, 4), (2, 5))
    assert spec.groups == ("thigh",) and spec.torso == (0, 3) and spec.part_schemes == {}
    assert spec.oks_sigmas == (DEFAULT_OKS_SIGMA,) * 6
    assert load_spec("lsp14") is LSP14
    with pytest.raises(SpecError, match="--joints nope.json: neither a built-in set"):
        load_spec("nope.json")


@pytest.mark.parametrize("change, message", [
    ({"joints": ["a", "b", "a"]}, "joints: duplicate name 'a'"),
    ({"flip_pairs": [["left_hip", "left_elbow"]]}, "flip_pairs: unknown joint 'left_elbow'"),
    ({"skeleton": [["left_hip", "tail"]]}, "skeleton: unknown joint 'tail'"),
    ({"sigmas": [1, 1, 1, 1, 0, 1]}, "sigmas: every sigma must be > 0"),
    ({"oks_sigmas": [0.1] * 5}, "oks_sigmas: must be 6 numbers"),
    ({"torso": ["left_hip", "pelvis"]}, "torso: unknown joint 'pelvis'"),
    ({"part_schemes": {"legs": [{"name": "leg", "bones": [["left_hip", "left_toe", 0.05]]}]}},
     "part_schemes.legs.leg: unknown joint 'left_toe'"),
    ({"part_schemes": {"legs": [{"name": "leg", "bones": [["left_hip", "left_knee", 0]]}]}},
     "part_schemes.legs.leg: a bone's radius must be > 0"),
    ({"joints": ["left_hip", "knee"], "skeleton": [], "pcp_limbs": [], "torso": None},
     "joints: 'left_hip' has no twin 'right_hip': declare flip_pairs"),
    ({"colour": "red"}, "colour: unknown field"),
])
def test_a_bad_spec_is_one_line_naming_the_field(change, message):
    with pytest.raises(SpecError) as e:
        KeypointSpec.from_dict({**LEGS, **change}, source="mine.json")
    assert str(e.value).startswith("keypoint spec mine.json: ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_config_holds_the_spec_and_an_old_config_is_lsp14(tmp_path):
    cfg = build_config("cpu")
    assert cfg.KEYPOINTS == LSP14.to_dict() and spec_of(cfg).names == LSP14.names
    flat = flatten(cfg.to_dict())
    assert flat["KEYPOINTS"] == LSP14.to_dict() and "KEYPOINTS.name" not in flat  # one key, not a group
    # a run directory from before specs: its config.json has no KEYPOINTS
    saved = cfg.to_dict()
    del saved["KEYPOINTS"]
    (tmp_path / "config.json").write_text(json.dumps({"config": saved}))
    assert load_run_config(str(tmp_path)).KEYPOINTS == LSP14.to_dict()
    # another set's part scheme must exist, or the part stages be off
    with pytest.raises(ConfigError, match="MODEL.PART_SCHEME: must be a part scheme of the keypoint spec legs6"):
        build_config("cpu", [f"KEYPOINTS={LEGS!r}"])
    with pytest.raises(ConfigError, match="DATA.JOINT_SIGMAS: must be None or 6 positive numbers"):
        build_config("cpu", [f"KEYPOINTS={LEGS!r}", "MODEL.PART_STAGES=0", "DATA.JOINT_SIGMAS=[7.0, 7.0]"])


def test_the_geometry_and_the_model_follow_the_spec():
    g = Geometry.from_config(build_config("cpu"))
    assert (g.input_size, g.stride, g.map_size, g.num_joints, g.num_parts) == (184, 8, 23, 14, 6)
    np.testing.assert_array_equal(g.belief_flip_order, np.append(LSP14.flip_permutation, 14))
    np.testing.assert_array_equal(g.part_flip_order, [0, 1, 2, 4, 3, 6, 5, 7])
    np.testing.assert_allclose(g.beliefs.sigmas, [7.0] * 14)
    m = g.affine((50.0, 60.0), 0.5)  # the person centre lands on the crop centre
    np.testing.assert_allclose(m @ [50.0, 60.0, 1.0], [91.5, 91.5])
    cfg, graph, _ = build_model("cpu", KEYPOINTS=LEGS, **{"MODEL.PART_STAGES": 0})
    legs = Geometry.from_config(cfg)
    assert legs.num_joints == 6 and legs.part_names is None and legs.part_codec(dense=True) is None
    assert graph.get_tensor_by_name(names.FINAL_BELIEFS + ":0").shape.as_list() == [None, 23, 23, 7]


def _saved_keypoints(logdir, change):
    """Rewrite the KEYPOINTS of the run config.json in ``logdir``: ``change`` maps it to the new value (None: drop)."""
    path = os.path.join(logdir, "config.json")
    with open(path) as f:
        saved = json.load(f)
    value = change(saved["config"]["KEYPOINTS"])
    if value is None:
        del saved["config"]["KEYPOINTS"]
    else:
        saved["config"]["KEYPOINTS"] = value
    with open(path, "w") as f:
        json.dump(saved, f)


def test_a_run_resumes_unless_its_networks_joints_change(tmp_path):
    logdir = str(tmp_path / "run")
    assert prepare_logdir(logdir, build_config("cpu"), {})[1] is False
    _saved_keypoints(logdir, lambda k: None)  # a run from before keypoint specs: lsp14
    assert prepare_logdir(logdir, build_config("cpu"), {})[1] is True
    # a field that only scores may change (a built-in's OKS sigmas, say), and is logged
    _saved_keypoints(logdir, lambda k: {**k, "oks_sigmas": [0.05] * 14})
    assert prepare_logdir(logdir, build_config("cpu"), {})[1] is True
    # the joints or their sigmas make the network and its targets: refused
    _saved_keypoints(logdir, lambda k: {**k, "sigmas": [2.0] * 14})
    with pytest.raises(UserError, match="KEYPOINTS.sigmas differ"):
        prepare_logdir(logdir, build_config("cpu"), {})


def test_lsp_people_map_onto_a_users_leg_spec_by_name():
    joints = np.zeros((14, 3), np.float32)
    joints[:, 0], joints[:, 2] = np.arange(14), VISIBLE
    record = PersonRecord("a.jpg", joints, (5.0, 5.0), 1.0, "test")
    (mapped,) = map_records([record], KeypointSpec.from_dict(LEGS))
    assert mapped.joints.shape == (6, 3) and (mapped.joints[:, 2] == VISIBLE).all()
    np.testing.assert_array_equal(mapped.joints[:, 0], [LSP14.index[n] for n in LEGS["joints"]])
    with pytest.raises(TypeError, match="not a bool"):
        transform_joints(np.eye(2, 3), record.joints, True)


def test_pck_without_a_torso_normalises_by_the_joints_box():
    gt = np.zeros((2, 4, 3))
    gt[0] = [(0, 0, 2), (10, 0, 2), (0, 30, 1), (500, 500, 0)]  # the unannotated joint is not in the box: 10 x 30
    gt[1, 0] = (3, 3, 2)  # one annotated joint: no box
    np.testing.assert_allclose(torso_size(gt, None), [30.0, np.nan])
    pred = gt[..., :2].copy()
    pred[0, 1, 0] += 6.0  # 6 px off: within 0.2 x 30
    pred[0, 2, 1] += 6.5  # just past
    np.testing.assert_array_equal(pck_correct(pred, gt, torso_size(gt, None))[0], [1, 1, 0, np.nan])


def test_which_joints_a_run_trains(tmp_path):
    coco_person = PersonRecord("a.jpg", np.zeros((17, 3)), (5.0, 5.0), 1.0, "coco", joint_set=COCO17)
    # a new run: --joints, else the first training data's own set
    assert choose_keypoints(str(tmp_path / "new"), None, None, [coco_person])[0] is COCO17
    assert choose_keypoints(str(tmp_path / "new"), "mpii16", None, [coco_person])[0] is MPII16
    # an old --data coco run (config.json without KEYPOINTS) resumes as it was: lsp14
    logdir = str(tmp_path / "old")
    prepare_logdir(logdir, build_config("cpu"), {})
    _saved_keypoints(logdir, lambda k: None)
    spec, why = choose_keypoints(logdir, None, None, [coco_person])
    assert spec.names == LSP14.names and why == "the run's own"
    with pytest.raises(UserError, match="--joints coco17: the run in .* trains lsp14; use another --logdir"):
        choose_keypoints(logdir, "coco17", None, [coco_person])
    # fine-tuning a model keeps its joints
    assert choose_keypoints(str(tmp_path / "ft"), None, build_config("cpu"), [coco_person])[0].names == LSP14.names
