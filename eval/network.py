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
    """A model.tflite in LiteRT's interpreter: called like eval.tf_network.TFNetwork, one crop per invoke.

    Args:
        path: the .tflite file (inputs names.PREDICT_INPUTS with batch 1, outputs names.predict_outputs).
        output_names: the outputs to return, in order.
    """

    def __init__(self, path, output_names):
        self.path = path
        self._interpreter = open_interpreter(path)
        inputs = {d["name"]: d["index"] for d in self._interpreter.get_input_details()}
        outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        self._inputs = [inputs[n] for n in names.PREDICT_INPUTS]
        self._outputs = [outputs[n] for n in output_names]
        self._lock = threading.Lock()  # one interpreter, whose tensors a call owns until it has read them

    def __call__(self, images, center_maps):
        results = [[] for _ in self._outputs]
        with self._lock:
            for image, center_map in zip(images, center_maps, strict=True):
                self._interpreter.set_tensor(self._inputs[0], np.ascontiguousarray(image[None], np.uint8))
                self._interpreter.set_tensor(self._inputs[1], np.ascontiguousarray(center_map[None], np.float32))
                self._interpreter.invoke()
                for out, index in zip(results, self._outputs, strict=True):
                    out.append(self._interpreter.get_tensor(index)[0])
        return [np.stack(out) for out in results]


def open_network(cfg, weights, precision="fp32"):
    """The network of ``weights`` (checkpoint prefix, weights.npz, or None for random weights): LiteRT if a
    model.tflite converted from exactly these weights sits beside them and ``precision`` is fp32 (bf16 is TensorFlow's
    oneDNN rewrite), else a TensorFlow session."""
    output_names = list(names.predict_outputs(cfg.MODEL.PART_STAGES))
    lite = lite_model(weights) if weights and precision == "fp32" else None
    if lite:
        return LiteNetwork(lite, output_names)
    from eval.tf_network import TFNetwork  # noqa: PLC0415  (imports TensorFlow: seconds)

    return TFNetwork(cfg, weights, precision)
