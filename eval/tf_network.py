"""A CPM in a TensorFlow session of its own: what trains, exports and runs checkpoints (eval.network chooses).

Imported only where TensorFlow is needed: eval.network runs a shipped or exported model without it.
"""
import zipfile

import tensorflow as tf
from tensorpack.predict import OfflinePredictor, PredictConfig
from tensorpack.tfutils import SmartInit
from tensorpack.tfutils.sessinit import SessionInit

from cpm import names
from cpm.checkpoint import load_weights
from cpm.config import learned_parts
from cpm.errors import UserError
from cpm.model import CPMModel
from cpm.session import SessionCreator
from dataflow.geometry import Geometry


class _FreshWeights(SessionInit):
    """Randomly initialised variables: a network of the right shape and speed for benchmarks, with no checkpoint."""

    def _run_init(self, sess):
        sess.run(tf.compat.v1.global_variables_initializer())


class TFNetwork:
    """The inference graph of ``cfg`` with ``weights`` (a checkpoint prefix or .npz; None: random) in a session;
    ``geometry``: the model's dataflow.geometry.Geometry (default: the config's).

    Calling it maps crops uint8 [B, S, S, 3] and centre maps float32 [B, H, H, 1] to the outputs
    ``names.predict_outputs``: beliefs [B, H, H, K + 1] (and part probabilities [B, H, H, P + 2]).
    """

    def __init__(self, cfg, weights=None, precision="fp32", geometry=None):
        self.output_names = list(names.predict_outputs(learned_parts(cfg)))
        self.stages = cfg.MODEL.STAGES
        self.geometry = geometry or Geometry.from_config(cfg)
        try:
            init = SmartInit(load_weights(weights)) if weights else _FreshWeights()
            self._predict = OfflinePredictor(PredictConfig(
                model=CPMModel.from_config(cfg, self.geometry), session_init=init,
                input_names=list(names.PREDICT_INPUTS), output_names=self.output_names,
                session_creator=SessionCreator(precision)))
        except (tf.errors.OpError, ValueError, OSError, KeyError, zipfile.BadZipFile) as e:  # a damaged file
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise UserError(f"cannot load the weights {weights}: {type(e).__name__}: {first}") from None
        self.graph, self.session = self._predict.graph, self._predict.sess
        self._stage_runs = {}  # stage -> callable of the network up to that stage's beliefs

    def __call__(self, images, center_maps):
        return self._predict(images, center_maps)

    def stage_beliefs(self, stage, images, center_maps):
        """Belief maps [B, H, H, K + 1] of stage ``stage`` (1-based), the graph run only as far as they need
        (TensorFlow prunes the part stages and the later belief stages)."""
        if stage not in self._stage_runs:
            inputs = [self.graph.get_tensor_by_name(f"{n}:0") for n in names.PREDICT_INPUTS]
            name = names.FINAL_BELIEFS if stage == self.stages else names.stage_beliefs(stage)
            self._stage_runs[stage] = self.session.make_callable(self.graph.get_tensor_by_name(f"{name}:0"), inputs)
        return self._stage_runs[stage](images, center_maps)

    def variables(self):
        """{name: value} of every variable of the inference graph (batch norm's moving statistics included, which
        tensorpack's dump_session_params leaves out): what an exported weights.npz holds."""
        with self.graph.as_default():
            variables = tf.compat.v1.global_variables()
        return dict(zip([v.name for v in variables], self.session.run(variables), strict=True))

    def frozen_graph(self):
        """The graph with its variables folded into constants, cut down to the outputs: a GraphDef."""
        # tensorpack's export_compact calls graph_util.convert_variables_to_constants, which TF 2.21 keeps only
        # under tf.compat.v1: freeze with that directly.
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            self.session, self.graph.as_graph_def(), self.output_names)
        return tf.compat.v1.graph_util.extract_sub_graph(frozen, self.output_names)

    def tflite(self, fp16=False):
        """The network as a TFLite flatbuffer (bytes) for LiteRT, one crop per call, with two signatures that share
        the weights: ``pose`` (inputs image [1, S, S, 3] uint8 and center_map [1, H, H, 1], every
        output) and ``locate`` (the final beliefs only: the part stages are not run). ``fp16`` stores the weights as
        float16 (half the size; LiteRT computes in float32 either way)."""
        frozen = self.frozen_graph()
        graph_fn = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(frozen, name=""), [])
        tensor = graph_fn.graph.get_tensor_by_name
        inputs = [tensor(f"{n}:0") for n in names.PREDICT_INPUTS]
        size, cells = self.geometry.input_size, self.geometry.map_size
        spec = [tf.TensorSpec([1, size, size, 3], tf.uint8, names.IMAGE),
                tf.TensorSpec([1, cells, cells, 1], tf.float32, names.CENTER_MAP)]
        functions = []
        for signature, outputs in (("pose", self.output_names), ("locate", [names.FINAL_BELIEFS])):
            pruned = graph_fn.prune(inputs, [tensor(f"{n}:0") for n in outputs])

            def run(image, center_map, pruned=pruned, outputs=outputs):
                return dict(zip(outputs, pruned(image, center_map), strict=True))

            run.__name__ = signature  # the converter names each signature after its function's graph
            functions.append(tf.function(run, input_signature=spec).get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, tf.Module())
        if fp16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
