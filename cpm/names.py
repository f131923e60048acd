"""Tensor names: the interface between the model, its callbacks and the predictor. Defined once, used everywhere."""

# Inputs (placeholders of the ModelDesc), in the order of the training DataFlow's components:
# IMAGE, BELIEFS, WEIGHTS, CENTER_MAP, then with part stages PARTS, PART_WEIGHT.
IMAGE = "image"  # uint8 [B, S, S, 3] BGR crop
BELIEFS = "beliefs"  # float32 [B, H, H, K + 1] belief-map targets
WEIGHTS = "weights"  # float32 [B, K + 1] loss weight per channel
CENTER_MAP = "center_map"  # float32 [B, H, H, 1]
PARTS = "parts"  # uint8 [B, H, H] part labels: 0 background, k + 1 for part k (cpm.parts)
PART_WEIGHT = "part_weight"  # float32 [B]: 0 where a part's joints are unannotated (its place is unknown)
PREDICT_INPUTS = (IMAGE, CENTER_MAP)

# Outputs.
FINAL_BELIEFS = "final_beliefs"  # float32 [B, H, H, K + 1], the last stage's belief maps
FINAL_PARTS = "final_parts"  # float32 [B, H, H, P + 2], the last part stage's probabilities: softmax over
#                              background + P parts, then the body's sigmoid
TOTAL_COST = "cost"  # scalar: summed stage losses + weight decay


def stage_beliefs(stage):
    """float32 [B, H, H, K + 1], belief maps of stage ``stage`` (1-based)."""
    return f"stage{stage}/beliefs"


def stage_loss(stage):
    """Scalar L2 loss of stage ``stage`` (1-based)."""
    return f"stage{stage}/loss"


def part_stage_loss(stage):
    """Scalar loss of part stage ``stage`` (1-based): weighted mean cross-entropy of the parts and the body."""
    return f"part{stage}/loss"


def predict_outputs(parts):
    """The outputs a predictor fetches, in order: FINAL_BELIEFS, and FINAL_PARTS for a model with learned parts
    (``parts``: cpm.config.learned_parts)."""
    return (FINAL_BELIEFS,) + ((FINAL_PARTS,) if parts else ())


#: suffix of a weight's average in a checkpoint (tf.train.ExponentialMovingAverage's, cpm.model.AverageWeights)
AVERAGE_SUFFIX = "/ExponentialMovingAverage"
