"""Convolutional Pose Machines on tensorpack.

tensorpack 0.11 builds layers with ``tf.layers``, which only exists in the legacy Keras 2 (``tf-keras``). TensorFlow
picks its Keras at first import, so the switch must be set before anything imports TensorFlow. Every package of this
project imports ``cpm`` first, which makes this the one place that does it.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature lines) drowns the training log; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cpm.backend import apply_at_import  # noqa: E402  (TensorFlow reads its backend switches at import)
from cpm.native_log import hold_tensorflow_import_log  # noqa: E402  (after the switches above)

apply_at_import()
hold_tensorflow_import_log()
