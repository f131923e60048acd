"""From belief maps to joints in original image coordinates, and the mean-pose baseline."""
import numpy as np

from cpm.joints import FLIP_PERMUTATION, NUM_JOINTS, UNANNOTATED
from dataflow.transforms import apply_affine, invert_affine


def joints_to_original(crop_joints, affine):
    """Map crop-px joints [K, >=2] back through the inverse of ``affine`` (original -> crop). Returns float64 [K, 2]."""
    return apply_affine(invert_affine(affine), np.asarray(crop_joints, dtype=np.float64)[:, :2])


def predict_people(predict_fn, dataflow, codec, num_people):
    """Run a predictor over an evaluation DataFlow and return joints in original image px.

    Args:
        predict_fn: callable (image uint8 [B, S, S, 3], center_map [B, H, H, 1]) -> beliefs [B, H, H, K + 1].
        dataflow: an evaluation flow (dataflow.pipeline.build_eval_dataflow), reset.
        codec: the BeliefCodec of the targets.
        num_people: records in the flow.
    Returns:
        (pred float32 [N, K, 3] x, y, score in original px; gt float32 [N, K, 3]), ordered by record index.
    """
    pred = np.zeros((num_people, NUM_JOINTS, 3), np.float32)
    gt = np.zeros((num_people, NUM_JOINTS, 3), np.float32)
    for image, center_map, index, affine, joints in dataflow:
        beliefs = predict_fn(image, center_map)
        for b, i, m, j in zip(beliefs, index, affine, joints, strict=True):
            decoded = codec.decode(b)
            pred[i, :, :2] = joints_to_original(decoded, m)
            pred[i, :, 2] = decoded[:, 2]
            gt[i] = j
    return pred, gt


def mean_crop_pose(records, affines):
    """The average pose of ``records`` in crop px (each through its own evaluation affine), [K, 2].

    Unannotated joints are left out of their joint's mean; people are not flipped.
    """
    total = np.zeros((NUM_JOINTS, 2))
    count = np.zeros((NUM_JOINTS, 1))
    for r, m in zip(records, affines, strict=True):
        ok = (r.joints[:, 2] != UNANNOTATED)[:, None]
        total += np.where(ok, apply_affine(m, r.joints[:, :2]), 0.0)
        count += ok
    return total / np.maximum(count, 1)


def mean_pose_prediction(mean_pose, affines):
    """The mean pose placed in every crop and mapped back to original px: [N, K, 2]."""
    return np.stack([joints_to_original(mean_pose, m) for m in affines])


def unflip_beliefs(beliefs):
    """Belief maps of a mirrored crop [..., H, W, K + 1] mirrored back, with left/right channels swapped."""
    order = np.append(FLIP_PERMUTATION, NUM_JOINTS)
    return beliefs[..., ::-1, :][..., order]
