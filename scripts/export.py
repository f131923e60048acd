"""Export a trained CPM: a TensorFlow SavedModel, a compact frozen graph, and its weights with its config.

    python scripts/export.py [--load RUN_DIR|CKPT|weights.npz] --out DIR [--weights-only] [--fp16]

DIR/saved_model/       SavedModel (tag "serve", signature "prediction_pipeline"): inputs image:0 (uint8
                       [B, S, S, 3] BGR crop) and center_map:0 (float32 [B, S/8, S/8, 1]); outputs final_beliefs:0
                       (float32 [B, S/8, S/8, 15]) and, with part stages, final_parts:0 (float32 [B, S/8, S/8, P + 2]:
                       background + part softmax, body sigmoid). Loads with plain TensorFlow, no tensorpack.
DIR/frozen_graph.pb    the same graph with its variables folded into constants
DIR/model.tflite       the frozen graph for the TFLite / LiteRT interpreter (what MediaPipe ships), one crop per call:
                       inputs image [1, S, S, 3] uint8 and center_map [1, S/8, S/8, 1], outputs as above
DIR/model.onnx         the frozen graph as ONNX (tf2onnx, opset 17) for onnxruntime and other ONNX runtimes: inputs
                       image:0 and center_map:0 with any batch size, outputs final_beliefs:0 (and final_parts:0)
DIR/weights.npz        model variables (``--load DIR/weights.npz`` works in evaluate.py and predict.py)
DIR/config.json        the run's config (S, sigmas, ... needed to build crops and read the maps)

--weights-only writes only weights.npz and config.json (what a shipped model in models/ holds); --fp16 stores the
weights as float16 (half the size; they load back as float32).
"""
import argparse
import os
import shutil

import tensorflow as tf
from tensorpack.predict import PredictConfig
from tensorpack.tfutils import SmartInit
from tensorpack.tfutils.export import ModelExporter

from cpm import names
from cpm.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_weights, resolve_checkpoint, save_weights
from cpm.errors import UserError, run_main
from cpm.model import CPMModel
from engine.cli import add_load_argument, add_verbose_argument, apply_verbosity, prepare_outputs
from eval.inference import PosePredictor

ONNX_OPSET = 17


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_argument(parser)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--weights-only", action="store_true", help="only weights.npz and config.json")
    parser.add_argument("--fp16", action="store_true", help="store the weights as float16")
    add_verbose_argument(parser)
    args = parser.parse_args()
    apply_verbosity(args)
    prepare_outputs(args, folders=("out",))
    weights, cfg = resolve_checkpoint(args.load)
    saved_model = os.path.join(args.out, "saved_model")
    if os.path.exists(saved_model) or (args.weights_only and os.path.exists(os.path.join(args.out, WEIGHTS_FILE))):
        raise UserError(f"{args.out} holds an export; choose another --out (exports are never overwritten)")
    outputs = [names.FINAL_BELIEFS] + ([names.FINAL_PARTS] if cfg.MODEL.PART_STAGES else [])

    def predict_config():
        return PredictConfig(model=CPMModel.from_config(cfg), session_init=SmartInit(load_weights(weights)),
                             input_names=list(names.PREDICT_INPUTS), output_names=outputs)

    written = []
    if not args.weights_only:
        ModelExporter(predict_config()).export_serving(saved_model)
        written.append("saved_model/")
    predictor = PosePredictor(cfg, weights)
    save_weights(os.path.join(args.out, WEIGHTS_FILE), predictor.variables(), fp16=args.fp16)
    if not args.weights_only:
        # tensorpack's export_compact calls graph_util.convert_variables_to_constants, which TF 2.21 keeps only
        # under tf.compat.v1: freeze with that directly.
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            predictor.session, predictor.graph.as_graph_def(), outputs)
        frozen = tf.compat.v1.graph_util.extract_sub_graph(frozen, outputs)
        with open(os.path.join(args.out, "frozen_graph.pb"), "wb") as f:
            f.write(frozen.SerializeToString())
        written.append("frozen_graph.pb")
        size, cells = cfg.DATA.INPUT_SIZE, cfg.DATA.INPUT_SIZE // cfg.DATA.STRIDE
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            os.path.join(args.out, "frozen_graph.pb"), input_arrays=list(names.PREDICT_INPUTS), output_arrays=outputs,
            input_shapes={names.IMAGE: [1, size, size, 3], names.CENTER_MAP: [1, cells, cells, 1]})
        with open(os.path.join(args.out, "model.tflite"), "wb") as f:
            f.write(converter.convert())
        written.append("model.tflite")
        import tf2onnx  # noqa: PLC0415  (the ONNX converter is needed here only)

        tf2onnx.convert.from_graph_def(frozen, input_names=[f"{n}:0" for n in names.PREDICT_INPUTS],
                                       output_names=[f"{n}:0" for n in outputs], opset=ONNX_OPSET,
                                       output_path=os.path.join(args.out, "model.onnx"))
        written.append("model.onnx")
    source = os.path.join(os.path.dirname(os.path.abspath(weights)), CONFIG_FILE)  # weights sit in their run dir
    if os.path.abspath(source) != os.path.abspath(os.path.join(args.out, CONFIG_FILE)):
        shutil.copyfile(source, os.path.join(args.out, CONFIG_FILE))
    written += [WEIGHTS_FILE + (" (float16)" if args.fp16 else ""), CONFIG_FILE]
    print(f"exported {weights} ({cfg.DATA.INPUT_SIZE} px input) to {args.out}: {', '.join(written)}")


if __name__ == "__main__":
    run_main(main)
