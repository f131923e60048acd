"""Which runtime runs a CPM for prediction: LiteRT where a model folder holds the network as model.tflite converted
from its weights (what scripts/ship.py and scripts/export.py write), else a TensorFlow session (eval.tf_network).

LiteRT needs no TensorFlow import, which is most of a cold start (docs/evaluation.md); both give the same maps.
"""
import os
import sys
import threading

import numpy as np

from cpm import names
from cpm.checkpoint import lite_model
from cpm.config import learned_parts


def open_interpreter(path):
    """LiteRT's interpreter of the .tflite at ``path``, its tensors allocated, on every core. The one line LiteRT's C++
    prints to stderr while it allocates ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") is held back: a
    command-line tool prints what a person reads (a failure still raises, with its message)."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415  (a 10 ms import, only where used)

    interpreter = Interpreter(model_path=path, num_threads=os.cpu_count())
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            interpreter.allocate_tensors()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return interpreter


class LiteNetwork:
    """A model.tflite in LiteRT's interpreter (eval.tf_network.TFNetwork.tflite writes it): called like
    eval.tf_network.TFNetwork, one crop per invoke, through its ``pose`` signature; ``stage_beliefs`` of the final
    stage runs its ``locate`` signature, which leaves the part stages out.

    Args:
        path: the .tflite file.
        output_names: the outputs to return, in order (names.predict_outputs).
        stages: the model's belief stages (MODEL.STAGES).
    """

    def __init__(self, path, output_names, stages):
        self.path, self.output_names, self.stages = path, list(output_names), stages
        self._interpreter = open_interpreter(path)
        self._runs = {k: self._interpreter.get_signature_runner(k) for k in ("pose", "locate")}
        self._lock = threading.Lock()  # one interpreter, whose tensors a call owns until it has read them

    def _run(self, signature, output_names, images, center_maps):
        results = [[] for _ in output_names]
        with self._lock:
            for image, center_map in zip(images, center_maps, strict=True):
                out = self._runs[signature](**{names.IMAGE: np.ascontiguousarray(image[None], np.uint8),
                                               names.CENTER_MAP: np.ascontiguousarray(center_map[None], np.float32)})
                for kept, name in zip(results, output_names, strict=True):
                    kept.append(out[name][0])
        return [np.stack(kept) for kept in results]

    def __call__(self, images, center_maps):
        return self._run("pose", self.output_names, images, center_maps)

    def stage_beliefs(self, stage, images, center_maps):
        """Final belief maps [B, H, H, K + 1] without the part stages; the TFLite model holds no earlier stage's."""
        if stage != self.stages:
            raise ValueError(f"stage {stage}: {self.path} returns only the final stage's beliefs ({self.stages})")
        return self._run("locate", [names.FINAL_BELIEFS], images, center_maps)[0]


def open_network(cfg, weights, precision="fp32", geometry=None):
    """The network of ``weights`` (checkpoint prefix, weights.npz, or None for random weights): LiteRT if a
    model.tflite converted from exactly these weights sits beside them and ``precision`` is fp32 (bf16 is TensorFlow's
    oneDNN rewrite), else a TensorFlow session (of ``geometry``'s shapes, default the config's)."""
    output_names = list(names.predict_outputs(learned_parts(cfg)))
    lite = lite_model(weights) if weights and precision == "fp32" else None
    if lite:
        return LiteNetwork(lite, output_names, cfg.MODEL.STAGES)
    from eval.tf_network import TFNetwork  # noqa: PLC0415  (imports TensorFlow: seconds)

    return TFNetwork(cfg, weights, precision, geometry)
