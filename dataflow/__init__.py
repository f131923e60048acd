"""Readers, transforms, targets and tensorpack DataFlows that turn pose annotations into CPM batches."""
import cpm  # noqa: F401  (sets TF_USE_LEGACY_KERAS before tensorpack imports TensorFlow)
