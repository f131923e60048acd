"""Export a trained CPM: a TensorFlow SavedModel, a compact frozen graph, and its weights with its config.

    python scripts/export.py [--load RUN_DIR|CKPT|weights.npz] --out DIR [--weights-only] [--fp16]

DIR/saved_model/       SavedModel (tag "serve", signature "prediction_pipeline"): inputs image:0 (uint8
                       [B, S, S, 3] BGR crop) and center_map:0 (float32 [B, S/8, S/8, 1]); outputs final_beliefs:0
                       (float32 [B, S/8, S/8, K + 1]: K, the joints of the keypoint spec in config.json) and, with
                       learned parts, final_parts:0 (float32 [B, S/8, S/8, P + 2]; S/4 for a part head:
                       background + part softmax, body sigmoid). Loads with plain TensorFlow, no tensorpack.
DIR/frozen_graph.pb    the same graph with its variables folded into constants
DIR/model.tflite       the frozen graph for the TFLite / LiteRT interpreter (what MediaPipe ships), one crop per call:
                       inputs image [1, S, S, 3] uint8 and center_map [1, S/8, S/8, 1], outputs as above; predict.py
                       and evaluate.py run it with LiteRT, without importing TensorFlow (eval.network)
DIR/model.onnx         the frozen graph as ONNX (tf2onnx, opset 17) for onnxruntime and other ONNX runtimes: inputs
                       image:0 and center_map:0 with any batch size, outputs final_beliefs:0 (and final_parts:0)
DIR/weights.npz        model variables (``--load DIR/weights.npz`` works in evaluate.py and predict.py)
DIR/config.json        the run's config (S, sigmas, ... needed to build crops and read the maps)

The folder is written under a temporary name beside DIR and renamed when whole: a full disk or a read-only folder is
one line (exit 2) and leaves no folder that looks complete. --weights-only writes only weights.npz and config.json
(what a shipped model in models/ holds); --fp16 stores the weights (and the TFLite model's) as float16 (half the
size; they load back as float32).
"""
import argparse
import os
import shutil

from cpm import names
from cpm.checkpoint import (
    CONFIG_FILE,
    LITE_FILE,
    WEIGHTS_FILE,
    load_weights,
    record_lite_model,
    resolve_checkpoint,
    save_weights,
)
from cpm.config import learned_parts
from cpm.errors import UserError, run_main
from cpm.files import staged
from cpm.model import CPMModel
from dataflow.geometry import Geometry
from engine.cli import add_load_argument, add_verbose_argument, apply_verbosity, prepare_outputs
from eval.tf_network import TFNetwork

ONNX_OPSET = 17


def main():
    # tensorpack (and TensorFlow) after cpm, which sets TensorFlow's switches before its first import
    from tensorpack.predict import PredictConfig  # noqa: PLC0415
    from tensorpack.tfutils import SmartInit  # noqa: PLC0415
    from tensorpack.tfutils.export import ModelExporter  # noqa: PLC0415

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
    outputs = list(names.predict_outputs(learned_parts(cfg)))
    geometry = Geometry.from_config(cfg)

    def predict_config():
        return PredictConfig(model=CPMModel.from_config(cfg, geometry), session_init=SmartInit(load_weights(weights)),
                             input_names=list(names.PREDICT_INPUTS), output_names=outputs)

    written = []
    with staged(args.out, folder=True) as out:  # the folder appears whole, or not at all
        if not args.weights_only:
            ModelExporter(predict_config()).export_serving(os.path.join(out, "saved_model"))
            written.append("saved_model/")
        network = TFNetwork(cfg, weights, geometry=geometry)
        save_weights(os.path.join(out, WEIGHTS_FILE), network.variables(), fp16=args.fp16)
        # the weights sit in their run dir, beside its config
        shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(weights)), CONFIG_FILE),
                        os.path.join(out, CONFIG_FILE))
        if not args.weights_only:
            frozen = network.frozen_graph()
            with open(os.path.join(out, "frozen_graph.pb"), "wb") as f:
                f.write(frozen.SerializeToString())
            written.append("frozen_graph.pb")
            with open(os.path.join(out, LITE_FILE), "wb") as f:
                f.write(network.tflite(fp16=args.fp16))
            record_lite_model(out)
            written.append(LITE_FILE)
            import tf2onnx  # noqa: PLC0415  (the ONNX converter is needed here only)

            tf2onnx.convert.from_graph_def(frozen, input_names=[f"{n}:0" for n in names.PREDICT_INPUTS],
                                           output_names=[f"{n}:0" for n in outputs], opset=ONNX_OPSET,
                                           output_path=os.path.join(out, "model.onnx"))
            written.append("model.onnx")
    written += [WEIGHTS_FILE + (" (float16)" if args.fp16 else ""), CONFIG_FILE]
    print(f"exported {weights} ({geometry.spec.name}: {geometry.num_joints} joints, {geometry.input_size} px input) to "
          f"{args.out}: {', '.join(written)}")


if __name__ == "__main__":
    run_main(main)
