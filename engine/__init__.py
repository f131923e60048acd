"""The training engine: composing a tensorpack training run (trainer) and the hooks that run inside it (hooks:
validation report, image summaries, speed, stops; resume: checkpoints by time, mid-epoch resumes, the clock).

It sits on top of the other packages: cpm (config, joints, parts, the network) <- dataflow (records to batches) <-
eval (metrics, inference) <- engine <- scripts. Nothing below imports it (tests/test_layering.py checks).
"""
import cpm  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything here imports TensorFlow)
