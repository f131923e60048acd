"""Ship a trained run as the repository's model: weights, config, model card and training curve.

    python scripts/ship.py --run checkpoints/lsp-campaign --datadir LSP --split 801-1000 [--out models/cpm-lsp]

Takes the run's best-validation checkpoint (max-val-pcp, or another joint set's max-val-*; else its newest), scores
it and its float16 copy on the validation people, and writes OUT/weights.npz in float16 if that changes PCK@0.2 by
less than 0.1 point (else in float32), OUT/model.tflite (the same network for LiteRT, which predict.py runs without
TensorFlow), OUT/config.json, OUT/curve.png (validation PCK@0.2 and training loss against training hours) and
OUT/README.md, the model card: data, recipe, training hours and CPUs, the joint set and its standard figure, PCK@0.2
per joint, PCP per limb, part IoU. The folder is built under a temporary name beside OUT and swapped in when whole
(files of OUT that ship does not write stay): a full disk or a read-only folder is one line (exit 2) and leaves the
model that was there as it was.
"""
import argparse
import copy
import os
import tempfile

import numpy as np

from cpm.checkpoint import (
    CONFIG_FILE,
    LITE_FILE,
    WEIGHTS_FILE,
    record_lite_model,
    resolve_checkpoint,
    save_weights,
)
from cpm.config import learned_parts, part_layers
from cpm.errors import UserError, run_main
from cpm.files import staged, write_json
from cpm.keypoints import LSP14, spec_of
from engine.cli import (
    add_dataset_arguments,
    add_verbose_argument,
    apply_verbosity,
    prepare_outputs,
    records_from_args,
    selection_text,
)
from engine.progress import QUALITY_LEVELS, time_to_quality
from engine.rundir import RunDir
from eval.evaluate import score
from eval.inference import PosePredictor
from eval.metrics import PART_FLOWS
from eval.network import open_network
from eval.tf_network import TFNetwork

MAX_FP16_LOSS = 0.001  # PCK@0.2 (a fraction): 0.1 point


def best_parts(report):
    """Where the shipped model's parts come from (MODEL.PARTS_FROM): "learned" if its part output beat the parts
    drawn around its predicted joints in mean part IoU on validation (``report``: eval.evaluate.score's), else
    "skeleton"."""
    learned, drawn = (report.get(PART_FLOWS[f] + "mean_part_iou") for f in ("learned", "skeleton"))
    return "learned" if learned is not None and (drawn is None or learned > drawn) else "skeleton"


def write_model(folder, meta, variables, fp16):
    """A model folder's config.json (``meta``, a run's config.json content) and weights.npz."""
    write_json(os.path.join(folder, CONFIG_FILE), meta, indent=2)
    save_weights(os.path.join(folder, WEIGHTS_FILE), variables, fp16=fp16)


def score_weights(cfg, weights, records, network=None):
    """eval.evaluate.score's report of ``weights`` on ``records``, with part IoU; in a TensorFlow session (which
    ship converts to TFLite) unless ``network`` is given."""
    predictor = PosePredictor(cfg, network=network or TFNetwork(cfg, weights))
    return score(predictor, records).report, predictor


def plot_curve(stats, shipped, path):
    """Validation PCK@0.2 and the training loss against training hours (epochs where hours were not logged), with
    the shipped checkpoint marked and the start of each run after the first (``run`` changes) as a dotted line."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    timed = all("train/hours" in s for s in stats)
    x = [s["train/hours"] if timed else s["epoch_num"] for s in stats]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, [100 * s["val/pck@0.2"] for s in stats], "o-", color="tab:blue", label="validation PCK@0.2")
    mark = shipped["train/hours"] if timed else shipped["epoch_num"]
    ax.plot([mark], [100 * shipped["val/pck@0.2"]], "*", color="black", markersize=14, label="shipped")
    starts = [(x[k - 1] + x[k]) / 2 for k in range(1, len(stats)) if stats[k].get("run") != stats[k - 1].get("run")]
    for k, at in enumerate(starts):
        ax.axvline(at, color="grey", linestyle=":", label="a run continues" if k == 0 else None)
    for level in QUALITY_LEVELS:
        ax.axhline(100 * level, color="grey", linewidth=0.8, alpha=0.5)
    ax.set(xlabel="training hours" if timed else "epoch", ylabel="PCK@0.2 (%)", ylim=(0, 100))
    ax.grid(alpha=0.3)
    loss = ax.twinx()
    loss.plot(x, [s["cost"] for s in stats], color="tab:red", alpha=0.6, label="training loss")
    loss.set(ylabel="training loss (moving average)")
    fig.legend(loc="upper center", ncol=4)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def metric_of(spec, report):
    """The figure the card leads with: the spec's standard one where the report has it, else PCK@0.2."""
    value = report.get(spec.metric)
    return spec.metric if value is not None and np.isfinite(value) else "pck@0.2"


def folder_name(path):
    return os.path.basename(os.path.normpath(path))


#: How the card names each standard figure (cpm.keypoints.METRICS)
METRIC_NAMES = {"pcp": "strict PCP", "pck@0.2": "PCK@0.2", "pckh@0.5": "PCKh@0.5", "ap": "keypoint AP"}


def card(run_dir, meta, stats, shipped, report, fp16, delta, train_text, val_text, best=True, history=None, runs=(),
         spec=LSP14, folder="cpm-lsp", parts=("learned", {})):
    """The model card's markdown; ``shipped`` is the stats.json entry of the shipped checkpoint's step, ``best``
    whether it is the run's best-validation checkpoint (max-val-*, by ``spec``'s standard figure) rather than the
    newest one kept; ``history`` and ``runs`` are RunDir.history()'s (the runs this one continues); ``spec`` the
    model's keypoint spec, ``folder`` the model folder's name; ``parts`` (MODEL.PARTS_FROM of the shipped model, the
    run's checkpoint's report with the part IoU of both flows)."""
    sessions = meta.get("sessions", [])
    model = meta["config"]["MODEL"]
    trained_parts = part_layers(model.get("PART_STAGES", 0), model.get("PART_HEAD", 0))
    cpus = sorted({s["cpu"] for s in sessions}) or ["not recorded (a run from before config.json kept sessions)"]
    precisions = sorted({str(s["precision"]) for s in sessions}) or [str(meta.get("precision"))]
    hours = shipped.get("train/hours")
    last3 = np.mean([s["val/pck@0.2"] for s in stats if s["global_step"] <= shipped["global_step"]][-3:])
    run_last3 = np.mean([s["val/pck@0.2"] for s in stats][-3:])
    finished = stats[-1]["epoch_num"] >= meta["config"]["TRAIN"]["EPOCHS"]
    start = RunDir.started_from(meta)
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    metric = metric_of(spec, report)
    prefix = PART_FLOWS[parts[0]]  # the part flow predict paints
    figures = [f"**{METRIC_NAMES[k]} {pct(report[k])} %**" for k in (metric, "pck@0.2", "pcp", "pckh@0.5", "ap")
               if report.get(k) is not None and np.isfinite(report[k])]
    lines = [
        f"# {folder}: a Convolutional Pose Machine of {spec.num_joints} joints ({spec.name})"
        + (" with part segmentation" if parts[0] == "learned" and "part_iou" in report else
           " and the parts drawn around them" if "skeleton_part_iou" in report else ""),
        "",
        f"Joints, in output order: {', '.join(spec.names)}.",
        "",
        f"Validation ({val_text}: {report['people']} people never trained on, crop "
        f"at the annotated person): " + ", ".join(dict.fromkeys(figures))
        + (f", mean part IoU {pct(report[prefix + 'mean_part_iou'])} %" if prefix + "mean_part_iou" in report
           else "") + ".",
        "",
        "## Training",
        f"- Data: trained on {train_text}; validated on {val_text}.",
        f"- Recipe: `--preset {meta['config']['PRESET']}` (docs/recipe.md): {meta['config']['DATA']['INPUT_SIZE']} px "
        f"input, {model['STAGES']} belief stages ({model['STAGE_WIDTH']} channels from stage 2) and {trained_parts}, "
        f"batch "
        f"{meta['config']['TRAIN']['BATCH_SIZE']}, {meta['config']['TRAIN']['OPTIMIZER']} at "
        f"{meta['config']['TRAIN']['LR']}, {meta['config']['TRAIN']['LR_SCHEDULE']} schedule; precision "
        f"{', '.join(precisions)}.",
        f"- Trained {shipped['global_step']} steps ({shipped['epoch_num']} epochs; "
        + (f"the run's best validation {METRIC_NAMES[metric]}{'' if finished else ' so far'}" if best else
           "the newest checkpoint kept")
        + f", of {stats[-1]['global_step']} steps run"
        f"{', the whole run' if finished else ''})"
        + (f" in {hours:.2f} hours of wall-clock time, niced beside other work," if hours else ",")
        + (f" starting from the weights of {start}," if start else " from scratch,")
        + f" in {max(1, len(sessions))} process(es) on: {'; '.join(cpus)}.",
        "- Time to quality (validation PCK@0.2 of the epoch reports, wall-clock training hours"
        + (f" and epochs from scratch, over {', '.join(folder_name(r) for r in runs)} and this run" if runs else
           " of this run alone, after the training of its starting weights" if start else "")
        + f"): {time_to_quality(history if runs else stats)}.",
        f"- Weights: {'float16' if fp16 else 'float32'} ({WEIGHTS_FILE}, and {LITE_FILE}: the same network for "
        f"LiteRT, which predict.py runs); float16 changed validation PCK@0.2 by "
        f"{100 * delta:+.2f} points. Mean of the last three validations up to it: {pct(last3)} %; of the run's "
        f"last three: {pct(run_last3)} %.",
        "",
        "## Validation scores",
        "",
        "| joint | " + " | ".join(report["per_joint"]) + " |",
        "|---|" + "---|" * len(report["per_joint"]),
        "| PCK@0.2 | " + " | ".join(pct(v) for v in report["per_joint"].values()) + " |",
    ]
    if report["per_limb"]:
        lines += ["", "| limb | " + " | ".join(report["per_limb"]) + " | mean |",
                  "|---|" + "---|" * (len(report["per_limb"]) + 1),
                  "| strict PCP | " + " | ".join(pct(v) for v in report["per_limb"].values())
                  + f" | {pct(report['pcp'])} |"]
    labels = {"learned": f"learned ({trained_parts})",
              "skeleton": "drawn around the predicted joints"}
    flows = [(labels[f], k) for f, k in PART_FLOWS.items() if f"{k}part_iou" in parts[1]]
    if flows:
        part_names = list(parts[1][f"{flows[0][1]}part_iou"])
        lines += ["", "| part IoU | " + " | ".join(part_names) + " | mean |", "|---|" + "---|" * (len(part_names) + 1)]
        lines += [f"| {label} | " + " | ".join(pct(parts[1][f"{k}part_iou"][n]) for n in part_names)
                  + f" | {pct(parts[1][f'{k}mean_part_iou'])} |" for label, k in flows]
        lines += ["", f"Part IoU of the run's checkpoint against the part targets drawn around the annotated joints "
                      f"of the {parts[1]['part_people']} people with every part's joints annotated. predict.py paints "
                      + ("the learned parts." if parts[0] == "learned" else
                         "the parts drawn around the predicted joints (`MODEL.PARTS_FROM=skeleton`), the better"
                         + (", so this model leaves the part stages out." if "part_iou" in parts[1] else "."))]
    lines += ["", "![validation PCK@0.2 and training loss](curve.png)", "",
              f"Produced by `scripts/ship.py --run {run_dir}`. Use it with `scripts/predict.py` or "
              f"`scripts/evaluate.py` (`--load models/{folder}`; models/cpm-lsp is their default), fine-tune it with "
              f"`scripts/train.py --load models/{folder}` (`--joints` to train another set from it).", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the run directory to ship")
    parser.add_argument("--out", default="models/cpm-lsp", help="model folder (default models/cpm-lsp)")
    add_dataset_arguments(parser, role="eval")
    add_verbose_argument(parser)
    args = parser.parse_args()
    apply_verbosity(args)
    prepare_outputs(args, folders=("out",))
    weights, cfg = resolve_checkpoint(args.run)
    run = RunDir(args.run)
    meta = run.read_meta()
    stats = [s for s in run.stats() if "val/pck@0.2" in s]
    if not stats:
        raise UserError(f"{args.run}/stats.json has no validation yet")
    import tensorflow as tf  # noqa: PLC0415  (after cpm, which sets TensorFlow's switches before its import)

    step = int(tf.train.load_variable(weights, "global_step")) if not weights.endswith(".npz") else None
    shipped = next((s for s in stats if s["global_step"] == step), stats[-1])
    records = records_from_args(args, cfg.READER)
    full, predictor = score_weights(cfg, weights, records)
    parts_from = best_parts(full)
    variables = predictor.network.variables()
    model_meta = copy.deepcopy(meta)  # the run's config.json, as the model folder's
    model_meta["config"]["MODEL"]["PARTS_FROM"] = parts_from
    stripped = parts_from == "skeleton" and learned_parts(cfg)
    if stripped:  # a model carries no layer it does not use
        model_meta["config"]["MODEL"].update(PART_STAGES=0, PART_HEAD=0, FREEZE_KEYPOINTS=False)
        variables = {k: v for k, v in variables.items() if not k.startswith("part")}
    with tempfile.TemporaryDirectory() as tmp:  # the float16 copy, scored as it would be shipped
        write_model(tmp, model_meta, variables, fp16=True)
        half_weights, shipped_cfg = resolve_checkpoint(os.path.join(tmp, WEIGHTS_FILE))
        half, _ = score_weights(shipped_cfg, half_weights, records)
    delta = half["pck@0.2"] - full["pck@0.2"]
    fp16 = abs(delta) < MAX_FP16_LOSS
    # the folder is built under a temporary name and swapped in whole: models/ never holds half a model
    with staged(args.out, folder=True) as out:
        write_model(out, model_meta, variables, fp16)
        # what predict.py runs, without TensorFlow; a stripped model's graph is the smaller one
        network = TFNetwork(shipped_cfg, os.path.join(out, WEIGHTS_FILE)) if stripped else predictor.network
        with open(os.path.join(out, LITE_FILE), "wb") as f:
            f.write(network.tflite(fp16=fp16))
        record_lite_model(out)
        history, runs = run.history()
        plot_curve(history, next(s for s in history if s["run"] is None and s["global_step"] == shipped["global_step"]),
                   os.path.join(out, "curve.png"))
        data = "; ".join(selection_text(*triple) for triple in meta.get("data", []))
        val_text = selection_text(args.data, args.datadir, args.split)
        # the card's scores are the shipped folder's, run as predict.py and evaluate.py run it (LiteRT)
        shipped_weights = os.path.join(out, WEIGHTS_FILE)
        final, _ = score_weights(shipped_cfg, shipped_weights, records,
                                 network=open_network(shipped_cfg, shipped_weights))
        final["people"] = len(records)
        with open(os.path.join(out, "README.md"), "w") as f:
            f.write(card(args.run, meta, stats, shipped, final, fp16, delta, data, val_text, spec=spec_of(cfg),
                         parts=(parts_from, full),
                         folder=folder_name(args.out),
                         best=os.path.basename(weights).startswith("max-val-"), history=history, runs=runs))
    metric = metric_of(spec_of(cfg), full)
    print(f"shipped {weights} to {args.out}: PCK@0.2 {100 * full['pck@0.2']:.2f} (float16 {100 * delta:+.2f}), "
          f"{METRIC_NAMES[metric]} {100 * full[metric]:.2f}; weights in {'float16' if fp16 else 'float32'}")


if __name__ == "__main__":
    run_main(main)
