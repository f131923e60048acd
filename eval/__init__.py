"""Pose metrics (pure numpy), inference and pictures."""
import cpm  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything here imports TensorFlow)
