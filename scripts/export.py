"""Export a trained CPM: a TensorFlow SavedModel, a compact frozen graph, and its weights with its config.

    python scripts/export.py --load RUN_DIR|CKPT|weights.npz --out DIR

DIR/saved_model/       SavedModel (tag "serve", signature "prediction_pipeline"): inputs image:0 (uint8
                       [B, S, S, 3] BGR crop) and center_map:0 (float32 [B, S/8, S/8, 1]); outputs final_beliefs:0
                       (float32 [B, S/8, S/8, 15]) and, with part stages, final_parts:0 (float32 [B, S/8, S/8, P + 2]:
                       background + part softmax, body sigmoid). Loads with plain TensorFlow, no tensorpack.
DIR/frozen_graph.pb    the same graph with its variables folded into constants
DIR/weights.npz        model variables (``--load DIR/weights.npz`` works in evaluate.py and predict.py)
DIR/config.json        the run's config (S, sigmas, ... needed to build crops and read the maps)
"""
import argparse
import os
import shutil

import tensorflow as tf
from tensorpack.predict import OfflinePredictor, PredictConfig
from tensorpack.tfutils import SmartInit
from tensorpack.tfutils.export import ModelExporter
from tensorpack.tfutils.varmanip import save_checkpoint_vars

from cpm import names
from cpm.checkpoint import CONFIG_FILE, WEIGHTS_FILE, resolve_checkpoint
from cpm.errors import UserError, run_main
from cpm.model import CPMModel


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", required=True, help="run directory, checkpoint prefix or exported weights.npz")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    weights, cfg = resolve_checkpoint(args.load)
    saved_model = os.path.join(args.out, "saved_model")
    if os.path.exists(saved_model):
        raise UserError(f"{saved_model} exists; choose another --out (exports are never overwritten)")
    os.makedirs(args.out, exist_ok=True)
    outputs = [names.FINAL_BELIEFS] + ([names.FINAL_PARTS] if cfg.MODEL.PART_STAGES else [])

    def predict_config():
        return PredictConfig(model=CPMModel.from_config(cfg), session_init=SmartInit(weights),
                             input_names=list(names.PREDICT_INPUTS), output_names=outputs)

    ModelExporter(predict_config()).export_serving(saved_model)
    predictor = OfflinePredictor(predict_config())
    with predictor.graph.as_default(), predictor.sess.as_default():
        # Every variable of the inference graph: tensorpack's dump_session_params keeps only TRAINABLE and MODEL
        # variables, which leaves out batch norm's moving statistics here.
        variables = tf.compat.v1.global_variables()
        save_checkpoint_vars(dict(zip([v.name for v in variables], predictor.sess.run(variables), strict=True)),
                             os.path.join(args.out, WEIGHTS_FILE))
        # tensorpack's export_compact calls graph_util.convert_variables_to_constants, which TF 2.21 keeps only
        # under tf.compat.v1: freeze with that directly.
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            predictor.sess, predictor.graph.as_graph_def(), outputs)
        frozen = tf.compat.v1.graph_util.extract_sub_graph(frozen, outputs)
    with open(os.path.join(args.out, "frozen_graph.pb"), "wb") as f:
        f.write(frozen.SerializeToString())
    source = os.path.join(os.path.dirname(os.path.abspath(weights)), CONFIG_FILE)  # weights sit in their run dir
    if os.path.abspath(source) != os.path.abspath(os.path.join(args.out, CONFIG_FILE)):
        shutil.copyfile(source, os.path.join(args.out, CONFIG_FILE))
    print(f"exported {weights} ({cfg.DATA.INPUT_SIZE} px input) to {args.out}: saved_model/, frozen_graph.pb, "
          f"{WEIGHTS_FILE}, {CONFIG_FILE}")


if __name__ == "__main__":
    run_main(main)
