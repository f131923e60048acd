"""Train a six-stage Convolutional Pose Machine with tensorpack.

    python scripts/train.py                      # cpu preset on the shipped LSP sample (9-20 min on 2 cores)
    python scripts/train.py --smoke              # a few steps and one validation pass (seconds)
    python scripts/train.py --preset paper --data lsp --datadir LSP --data lsp --datadir LSPET --precision bf16
    python scripts/train.py --cluster cluster.json --job ps --task 0       # on K machines: docs/scaling.md
    python scripts/train.py --cluster cluster.json --job worker --task 0 ...

Re-running a command continues its run from the last checkpoint. Runs live in checkpoints/<preset>-<data> unless
--logdir says otherwise; each holds checkpoints, TensorBoard events, stats.json and the run's config.json.
"""
import argparse
import os
import sys

from cpm import backend
from cpm.checkpoint import resolve_checkpoint
from cpm.config import build_config
from cpm.errors import UserError, run_main
from cpm.keypoints import BUILTIN
from dataflow.datasets import DATASETS, load_selection, selections
from dataflow.records import check_all_images_exist, model_people
from engine.cli import DEFAULT_PRESET, add_config_arguments, add_precision_argument
from engine.distributed import Worker, load_cluster, start_server
from engine.rundir import RunDir
from engine.speed import run_backend
from engine.trainer import choose_keypoints, split_validation, train
from eval.metrics import format_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# --smoke: the smallest run that exercises everything (training steps, checkpoint, validation, stats.json).
SMOKE_CONFIG = ["TRAIN.EPOCHS=1", "TRAIN.STEPS_PER_EPOCH=8", "TRAIN.BATCH_SIZE=8", "TRAIN.VAL_MAX_PEOPLE=16",
                "TRAIN.SUMMARY_PERIOD=4"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", choices=list(DATASETS), help="dataset name; repeat to combine")
    parser.add_argument("--datadir", action="append", help="dataset folder, one per --data (lsp: default sample)")
    parser.add_argument("--split", action="append",
                        help="split, one for all or one per --data (default: the dataset's training split)")
    parser.add_argument("--val-data", action="append", choices=list(DATASETS), help="validation dataset(s)")
    parser.add_argument("--val-datadir", action="append", help="validation dataset folder(s)")
    parser.add_argument("--val-split", action="append",
                        help="validation split(s) (default: each dataset's evaluation split)")
    add_config_arguments(parser, preset=None, preset_help=f"config preset (default: {DEFAULT_PRESET}, or --load's)")
    parser.add_argument("--load", help="fine-tune: a model (run directory, checkpoint or weights.npz, e.g. "
                                       "models/cpm-lsp) whose weights and config the run starts from (ignored when "
                                       "the logdir has its own checkpoint)")
    parser.add_argument("--logdir", help="run directory (default: checkpoints/<preset>-<data>)")
    parser.add_argument("--joints", metavar="NAME|FILE",
                        help="the keypoint spec to train: " + ", ".join(BUILTIN) + ", a JSON file (docs/data.md), or "
                             "data (the first training dataset's own); default: a resumed run's own, else --load's, "
                             "else the first training dataset's (a --load'ed model of another set is fine-tuned into "
                             "it: shared joints keep their channels)")
    parser.add_argument("--seed", type=int, default=None, help="augmentation seed")
    add_precision_argument(parser)
    parser.add_argument("--backend", metavar="auto|" + "|".join(backend.BACKENDS),
                        help="TensorFlow's CPU backend (default auto: the run's own when it resumes, else the fastest "
                             "measured on this machine, measured at the first run; also CPM_BACKEND)")
    parser.add_argument("--gpus", type=int, default=1, help="devices (per worker with --cluster); >1 uses "
                                                           "SyncMultiGPUTrainerReplicated (docs/scaling.md)")
    parser.add_argument("--smoke", action="store_true", help="a few steps on the sample, one validation pass")
    cluster = parser.add_argument_group("training across machines (docs/scaling.md)")
    cluster.add_argument("--cluster", metavar="FILE",
                         help='JSON {"ps": ["host:port", ...], "worker": ["host:port", ...]}, the same on every task')
    cluster.add_argument("--job", choices=["ps", "worker"], help="this process's job in --cluster")
    cluster.add_argument("--task", type=int, default=0, help="this process's index in its job (worker 0: the chief)")
    cluster.add_argument("--peer-timeout", type=float, default=60.0, metavar="SECONDS",
                         help="a step waiting this long for the other workers checks that every task still answers "
                              "(default 60)")
    args = parser.parse_args()
    # the backend first: TensorFlow is imported with this process's, and another one means starting again
    if args.load and not (os.path.exists(args.load) or os.path.exists(args.load + ".index")):
        raise UserError(f"--load {args.load}: no such checkpoint")
    preset0 = args.preset or (resolve_checkpoint(args.load)[1].PRESET if args.load else DEFAULT_PRESET)
    triples = selections(args.data, args.datadir, args.split, "train")
    logdir = args.logdir or os.path.join(ROOT, "checkpoints", f"{'smoke' if args.smoke else preset0}-"
                                                              f"{'+'.join(n for n, _, _ in triples)}")
    saved = RunDir(logdir).read_meta().get("backend") if RunDir(logdir).has_config() else None
    chosen, why = backend.decided() or run_backend(args.backend or os.environ.get(backend.ENV), saved, args.precision,
                                                   cluster=bool(args.cluster))
    if chosen != backend.running():
        backend.reexec_with(chosen, why)
    print(f"backend: {chosen} ({why})")
    worker = None
    if args.cluster:
        if not args.job:
            raise UserError("--cluster needs --job ps or --job worker")
        if args.precision == "bf16":  # measured: the oneDNN bf16 rewrite leaves kernels the gRPC runtime lacks
            raise UserError("--precision bf16 does not run under --cluster on TensorFlow 2.21 (no bfloat16 "
                            "_FusedConv2D kernel in its runtime); use --precision fp32")
        spec = load_cluster(args.cluster, args.job, args.task)
        server = start_server(spec, args.job, args.task, args.precision)
        if args.job == "ps":
            print(f"parameter server {args.task} serving at {spec['ps'][args.task]} (pid {os.getpid()}); it serves "
                  f"until killed, so end it once the workers are done", flush=True)
            server.join()
        worker = Worker(spec, args.task, server, args.peer_timeout)
    elif args.job:
        raise UserError(f"--job {args.job} needs --cluster FILE")

    overrides = (SMOKE_CONFIG if args.smoke else []) + args.config
    load = base = None
    if args.load:  # fine-tuning: the model's own config, with the run's overrides on top
        load, base = resolve_checkpoint(args.load)
        if args.preset and args.preset != base.PRESET:
            raise UserError(f"--preset {args.preset}: --load {args.load} was trained with preset {base.PRESET}, "
                            f"whose config the run takes (drop --preset)")
    preset = base.PRESET if base is not None else args.preset or DEFAULT_PRESET
    # the readers' options first: which joints the run trains can depend on what the data holds
    reader = build_config(preset, [o for o in overrides if o.startswith("READER.")], base=base).READER
    records = load_selection(triples, reader)
    tag = "smoke" if args.smoke else preset
    logdir = args.logdir or os.path.join(ROOT, "checkpoints", f"{tag}-{'+'.join(n for n, _, _ in triples)}")
    spec, why = choose_keypoints(logdir, args.joints, base, records)
    cfg = build_config(preset, overrides, base=base, keypoints=spec)
    records = model_people(records, spec)  # before the split: it holds out the same people as it always has
    if args.val_data:
        val_records = load_selection(selections(args.val_data, args.val_datadir, args.val_split, "eval"),
                                     cfg.READER)
        train_records = records
    else:
        train_records, val_records = split_validation(records, cfg.DATA.VAL_FRACTION)
    check_all_images_exist(val_records, "validation")
    print(f"joints: {spec.name}, {spec.num_joints} of them ({why})"
          + ("" if spec.part_schemes else "; the set has no part scheme: no part stages"))
    print(f"training on {len(train_records)} people, validating on {len(val_records)}; run directory {logdir}")
    meta = {"data": triples, "argv": sys.argv[1:], "precision": args.precision, "backend": chosen}
    result = train(cfg, train_records, val_records, logdir, load=load, precision=args.precision,
                   gpus=args.gpus, seed=args.seed, meta=meta, cluster=worker)
    print(format_report(result["baseline"], "mean-pose baseline"))
    final = result["final"]
    figures = [f"{name} {100 * final['val/' + key]:.1f}" for key, name in
               (("pcp", "PCP"), ("pck@0.2", "PCK@0.2"), ("pckh@0.5", "PCKh@0.5"), ("ap", "AP"))
               if "val/" + key in final]
    if figures:  # (a cluster's other workers do not validate)
        print(f"final (epoch {final['epoch_num']}, step {final['global_step']}): {', '.join(figures)}")
    print(f"checkpoints, stats.json and config.json: {logdir}\nTensorBoard: tensorboard --logdir {logdir}")


if __name__ == "__main__":
    run_main(main)
