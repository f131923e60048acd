"""Tensor names: the interface between the model, its callbacks and the predictor. Defined once, used everywhere."""

# Inputs (placeholders of the ModelDesc), in the order of the training DataFlow's components:
# IMAGE, BELIEFS, WEIGHTS, CENTER_MAP.
IMAGE = "image"  # uint8 [B, S, S, 3] BGR crop
BELIEFS = "beliefs"  # float32 [B, H, H, K + 1] belief-map targets
WEIGHTS = "weights"  # float32 [B, K + 1] loss weight per channel
CENTER_MAP = "center_map"  # float32 [B, H, H, 1]
PREDICT_INPUTS = (IMAGE, CENTER_MAP)

# Outputs.
FINAL_BELIEFS = "final_beliefs"  # float32 [B, H, H, K + 1], the last stage's belief maps
TOTAL_COST = "cost"  # scalar: summed stage losses + weight decay


def stage_beliefs(stage):
    """float32 [B, H, H, K + 1], belief maps of stage ``stage`` (1-based)."""
    return f"stage{stage}/beliefs"


def stage_loss(stage):
    """Scalar L2 loss of stage ``stage`` (1-based)."""
    return f"stage{stage}/loss"
