"""The Python API (eval.api.PoseEstimator) on a smoke-trained model."""
import os
import types

import cv2
import numpy as np
import pytest

from cpm.errors import UserError
from cpm.joints import JOINT_NAMES
from cpm.keypoints import LSP14
from dataflow.datasets import SAMPLE_LSP_DIR
from eval.api import PoseEstimator

IMAGE = cv2.imread(os.path.join(SAMPLE_LSP_DIR, "images", "im0003.jpg"))
BOX = (20, 5, 100, 150)


@pytest.fixture(scope="module")
def estimator(trained_run):
    return PoseEstimator(trained_run)


@pytest.mark.slow
def test_joints_are_named_inside_the_image_and_the_same_in_rgb(estimator):
    (person,) = estimator(IMAGE, box=BOX)
    assert list(person.joints) == list(JOINT_NAMES) and person.box == BOX
    xy = person.array()[:, :2]
    assert ((xy >= 0) & (xy <= [IMAGE.shape[1] - 1, IMAGE.shape[0] - 1])).all()
    (rgb,) = estimator(IMAGE[:, :, ::-1], box=BOX, rgb=True)
    np.testing.assert_array_equal(rgb.array(), person.array())  # the same pixels, told apart by the flag


@pytest.mark.slow
def test_parts_beliefs_greyscale_and_detection(estimator):
    (person,) = estimator(IMAGE, box=BOX, parts=True, beliefs=True)
    assert person.part_mask.shape == IMAGE.shape[:2] and person.part_mask.max() <= len(estimator.part_names)
    assert person.body_mask.shape == IMAGE.shape[:2] and person.body_mask.dtype == bool
    # the parts drawn around the joints instead: labels of the same parts, the body their union
    drawn = PoseEstimator(estimator.weights, parts_from="skeleton")
    (skeleton,) = drawn(IMAGE, box=BOX, parts=True)
    assert drawn.parts_from == "skeleton" and drawn.part_names == estimator.part_names
    assert skeleton.part_mask.max() > 0 and (skeleton.body_mask == (skeleton.part_mask > 0)).all()
    assert person.beliefs.shape[-1] == len(JOINT_NAMES) + 1
    assert len(estimator(cv2.cvtColor(IMAGE, cv2.COLOR_BGR2GRAY), box=BOX)) == 1
    # no box: BlazePose finds the one person of im0003 (its square ROI, 178 px, reaching past the image's left edge)
    (found,) = estimator(IMAGE)
    assert estimator.detected is True and np.allclose(found.box, (-31.6, -6.2, 178.1, 178.1), atol=0.5)
    (whole,) = estimator(np.full((60, 40, 3), 128, np.uint8))  # nobody in a grey image: the whole image, said so
    assert estimator.detected is False and whole.box == (0.0, 0.0, 40.0, 60.0)


@pytest.mark.slow
@pytest.mark.parametrize("image, box, message", [
    (IMAGE.astype(np.float32), None, "expected uint8"),
    (IMAGE[:, :, :2], None, "expected uint8"),
    (IMAGE, (1, 2, 3), "expected (x, y, w, h)"),
])
def test_bad_calls_are_user_errors(estimator, image, box, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        estimator(image, box=box)


class _RecordingPredictor:
    """PosePredictor's interface: ``locate`` answers a fixed pose; ``pose`` records the crop it was asked for."""

    part_names, drawn_part_names, weights, spec = None, None, "fake", LSP14
    cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(PARTS_FROM="learned"))

    def __init__(self, located):
        self.located, self.crops = located, []

    def locate(self, image, center, scale, zooms=(1.0,)):
        self.crops.append(("locate", tuple(np.round(center, 3)), round(float(scale), 4)) + (() if zooms == (1.0,)
                                                                                            else (zooms,)))
        return self.located.copy()

    def pose(self, image, center, scale, parts=None):
        self.crops.append(("pose", tuple(np.round(center, 3)), round(float(scale), 4)))
        return self.located.copy(), None, None


def test_each_person_is_posed_again_where_the_first_look_put_it():
    """refine=1: the box's crop is a first look; the answer comes from the crop the training rule cuts around the
    first look's joints (joints spanning x 10-50, y 20-120: centre (30, 70), scale 100 / 200 = 0.5)."""
    located = np.zeros((len(JOINT_NAMES), 3), np.float32)
    located[:, 0], located[:, 1], located[:, 2] = np.linspace(10, 50, 14), np.linspace(20, 120, 14), 0.5
    box = (0, 0, 80, 160)  # centre (40, 80), scale 160 / 200
    fake = _RecordingPredictor(located)
    (person,) = PoseEstimator(predictor=fake, refine=1)(np.zeros((200, 100, 3), np.uint8), box=box)
    assert fake.crops == [("locate", (40.0, 80.0), 0.8), ("pose", (30.0, 70.0), 0.5)]
    np.testing.assert_allclose(person.array(), located)
    fake.crops = []
    PoseEstimator(predictor=fake, refine=0)(np.zeros((200, 100, 3), np.uint8), box=box)
    assert fake.crops == [("pose", (40.0, 80.0), 0.8)]  # the fastest path: the box's crop is the answer
    with pytest.raises(UserError, match="refine -1"):
        PoseEstimator(predictor=fake, refine=-1)


def test_where_nobody_is_detected_the_first_look_averages_the_whole_image_at_several_zooms():
    """A black image: no detection, so the whole image (centre (50, 100), scale 200 / 200) is looked at through
    FALLBACK_ZOOMS, the second look and the answer through the plain crop around the joints found."""
    located = np.zeros((len(JOINT_NAMES), 3), np.float32)
    located[:, 0], located[:, 1], located[:, 2] = np.linspace(10, 50, 14), np.linspace(20, 120, 14), 0.5
    fake = _RecordingPredictor(located)
    estimator = PoseEstimator(predictor=fake, refine=2)
    estimator(np.zeros((200, 100, 3), np.uint8))
    assert estimator.detected is False
    assert fake.crops == [("locate", (50.0, 100.0), 1.0, (1.0, 0.8, 0.65)), ("locate", (30.0, 70.0), 0.5),
                          ("pose", (30.0, 70.0), 0.5)]


def test_the_person_nearest_the_image_centre_comes_first_then_the_detector_order(monkeypatch):
    from eval import people

    boxes = [(np.array(b, np.float64), *people.box_center_scale(b))
             for b in ([0, 0, 40, 40], [70, 80, 60, 40], [150, 150, 50, 50])]
    monkeypatch.setattr(people, "find_people", lambda image: list(boxes))
    found, detected = people.people_to_pose(np.zeros((200, 200, 3), np.uint8))  # centre (100, 100): box 2's
    assert detected and [list(b[0]) for b in found] == [[70, 80, 60, 40], [0, 0, 40, 40], [150, 150, 50, 50]]
