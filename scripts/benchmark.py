"""Throughput benchmarks that print figures. The speed targets (TRAIN_TARGET, PREDICT_TARGET) are relative to peers
timed in the same run: given the peer's figure (--peer), train and predict print the ratio and whether it is met.

    python scripts/benchmark.py [--verbose] data --data lsp --datadir DIR [--split S] [--n 400] [--workers N]
    python scripts/benchmark.py train --preset cpu|paper --precision fp32|bf16 [--batch B] [--steps N] [--peer S S]
    python scripts/benchmark.py predict [--load MODEL | --preset cpu] [--precision P] [--n 50] [--boxes detected]
        [--peer MS]
    python scripts/benchmark.py resume [--kills 10] [--kill-in-save] [--logdir DIR] [--config KEY=VALUE ...]
    python scripts/benchmark.py detect [--coco DIR] [--jhmdb DIR]
    python scripts/benchmark.py cold [--load MODEL] [--image PHOTO] [--repeat 5]

Every figure is printed with the CPU it was measured on (model, cores, vector/matrix flags): speeds differ 3-4x
between the machines we train on, so only figures from one run on one machine compare.

``data``: samples/s of the training mapper in one process and with N worker processes (default: all cores), and
where one sample's time goes (decode, warp + photometric augmentation, targets).
``train``: seconds per training step (forward, backward, update) and per inference batch of the CPM, on real
batches from the shipped sample fed from memory, after warm-up steps, and milliseconds per person of one crop
through the inference graph (what predict.py runs on a model without its LiteRT file); on the backend train.py
trains on here, or on each of ``--backends``.
``predict``: milliseconds per person from an image file to joints (and part labels, if the model has part stages)
through the predictor that predict.py uses, given the person's box: decode, crop, network, decoding; with
``--boxes detected`` per person found without a box, as predict.py finds them (detector, then 1 + ``--refine``
crops per person). The shipped model unless --load names another; --preset times that preset's network with random
weights instead (as fast as a trained one).
``cold``: seconds from the shell to one photo's answer, ``predict.py --image PHOTO`` in a new process each time
(imports, loading the model and the detector, one prediction, writing the JSON), median of ``--repeat``, against
COLD_TARGET; once as predict.py runs by default (LiteRT, where the model folder holds its model.tflite) and once with
``--precision bf16``, which takes the TensorFlow path.
``resume``: a short training run on the shipped sample with 2 data workers, SIGKILLed ``--kills`` times at random
moments (one of them inside a checkpoint save with --kill-in-save) and restarted each time until it finishes. Checks
that each restart resumes from the newest checkpoint, that no process of the killed run stays alive, that the run
reaches its final step with its config unchanged; prints "K/K resumed, N processes leaked, at most X s of training
lost" and exits 1 if any check failed.
"""
import argparse
import os
import re
import time

import numpy as np

from cpm.config import build_config
from cpm.errors import UserError, run_main
from dataflow.datasets import SAMPLE_LSP_DIR
from dataflow.geometry import Geometry
from dataflow.images import read_image
from dataflow.mapper import make_mapper
from dataflow.pipeline import mapped_indices
from dataflow.records import model_people
from engine.cli import (
    add_config_argument,
    add_config_arguments,
    add_dataset_arguments,
    add_load_argument,
    add_precision_argument,
    add_verbose_argument,
    apply_verbosity,
    parse_scales,
    records_from_args,
)
from eval.api import REFINE

# Speed targets against the yardsticks of ../shared/tools, timed in the same run on the same machine: a training step
# and an inference batch in at most 0.8x the time of the same network in PyTorch (peer_cpm_torch.py), one person from
# image file to joints no slower than MediaPipe's BlazePose on one image (peer_mediapipe.py).
TRAIN_TARGET, PREDICT_TARGET = 0.8, 1.0
COLD_TARGET = 2.0  # s from the shell to one photo's joints on 2 cores


def _versus(ours, peer, target):
    """'0.93x the peer (target <= 0.8x: missed)' for our time and the peer's, in the same unit."""
    ratio = ours / peer
    return f"{ratio:.2f}x the peer's {peer:g} (target <= {target:g}x: {'met' if ratio <= target else 'missed'})"


def cpu_line():
    from cpm.precision import cpu_description

    return f"CPU: {cpu_description()}"


def bench_data(args):
    cfg = build_config(args.preset, args.config)
    geometry = Geometry.from_config(cfg)
    records = model_people(records_from_args(args, cfg.READER), geometry.spec)
    mapper = make_mapper(records, geometry, cfg.AUG, seed=0)
    n = args.n
    order = np.random.default_rng(0).integers(0, len(records), n)
    stages = {"decode": 0.0, "warp+augment": 0.0, "targets": 0.0}
    start = time.perf_counter()
    for i in order:
        t0 = time.perf_counter()
        image = read_image(records[i].image)
        t1 = time.perf_counter()
        _, _, joints, center = mapper.crop(records[i], image)
        t2 = time.perf_counter()
        mapper.targets(joints, center)
        t3 = time.perf_counter()
        stages["decode"] += t1 - t0
        stages["warp+augment"] += t2 - t1
        stages["targets"] += t3 - t2
    one = n / (time.perf_counter() - start)

    workers = args.workers or os.cpu_count()
    ds = mapped_indices(order, mapper, workers, shuffle=False, strict=False)  # endless: count n after a warm-up
    ds.reset_state()
    it = iter(ds)
    for _ in range(4 * workers):  # warm-up: fork, first imports, filled buffers
        next(it)
    start = time.perf_counter()
    for _ in range(n):
        next(it)
    many = n / (time.perf_counter() - start)

    total = sum(stages.values())
    print(cpu_line())
    print(f"data pipeline: {args.data} {args.split}, {len(records)} people, {n} samples, "
          f"{geometry.input_size}px crops, {os.cpu_count()} cores")
    print(f"  1 process:    {one:8.1f} samples/s  ({1000 * total / n:.2f} ms/sample)")
    print(f"  {workers} workers:    {many:8.1f} samples/s")
    for name, t in stages.items():
        print(f"  {name:13s} {1000 * t / n:7.2f} ms/sample  ({100 * t / total:4.1f} %)")


def bench_train(args):
    from cpm import backend
    from engine.speed import measure_in, step_seconds

    print(cpu_line())
    overrides = list(args.config)
    entry = backend.cached(args.precision)
    trains_on = os.environ.get(backend.ENV) or (entry["choice"] if entry else backend.running())
    if not args.backends and trains_on == backend.running():  # this process's backend
        t = step_seconds(args.preset, args.precision, args.batch, args.steps, args.warmup, overrides)
        rows = {backend.running(): t}
    elif not args.backends:  # what train.py trains on here, not the prediction backend this process runs
        rows = {trains_on: measure_in(trains_on, args.precision, preset=args.preset, batch=args.batch,
                                      steps=args.steps, warmup=args.warmup, overrides=overrides)}
    else:  # each backend in a process of its own, side by side
        names = list(backend.candidates(args.precision)) if args.backends == ["all"] else args.backends
        unknown = [n for n in names if n not in backend.BACKENDS]
        if unknown:
            raise UserError(f"--backends {unknown[0]}: choose from all, {', '.join(backend.BACKENDS)}")
        isa = {"ONEDNN_MAX_CPU_ISA": args.max_isa, "XLA_FLAGS": f"--xla_cpu_max_isa={args.max_isa}"} \
            if args.max_isa else {}
        rows = {n: measure_in(n, args.precision, isa, preset=args.preset, batch=args.batch, steps=args.steps,
                              warmup=args.warmup, overrides=overrides) for n in names}
    first = next(iter(rows.values()))
    print(f"model: preset {args.preset}, {first['input_size']}px input, {first['parameters']:,} parameters, batch "
          f"{args.batch}, {args.precision}, {first['parts']}, {os.cpu_count()} cores"
          + (f", instruction sets capped at {args.max_isa} (oneDNN, which also runs Eigen's matrix products, and XLA)"
             if args.max_isa else ""))
    peer = dict(zip(("train", "inference"), args.peer or [], strict=False))
    for name, t in rows.items():
        for kind, label in (("train", "train step"), ("inference", "inference")):
            versus = f"  {_versus(t[kind], peer[kind], TRAIN_TARGET)}" if kind in peer else ""
            print(f"  {name:10s} {label:10s} {t[kind]:7.3f} s/batch  ({args.batch / t[kind]:6.1f} images/s){versus}")
        print(f"  {name:10s} {'predict':10s} {1000 * t['predict']:7.1f} ms/person (one crop, the inference graph)")
    if len(rows) > 1:
        fastest = min(rows, key=lambda n: rows[n]["train"])
        predicting = [n for n in rows if n in backend.candidates(args.precision, predict=True)] or list(rows)
        predict = min(predicting, key=lambda n: rows[n]["predict"])
        print(f"fastest training step: {fastest}; fastest prediction (XLA's left out: it compiles at each start): "
              f"{predict}; "
              + (f"this machine's recorded choices: {entry['choice']} and {entry['predict']['choice']} (measured "
                 f"{entry['measured']})"
                 if entry else "nothing recorded yet (train.py measures at its first run)"))


def bench_predict(args):
    from cpm.checkpoint import resolve_checkpoint
    from dataflow.datasets import load_records
    from eval.api import PoseEstimator
    from eval.inference import PosePredictor

    if args.preset:
        weights, cfg = None, build_config(args.preset, args.config)
    else:
        weights, cfg = resolve_checkpoint(args.load)  # None: the shipped model
    predictor = PosePredictor(cfg, weights, args.precision, zooms=parse_scales(args.scales), flip=args.flip)
    records = load_records("lsp", SAMPLE_LSP_DIR, "train")[:args.n]
    # parts as predict.py paints them: the model's MODEL.PARTS_FROM (learned, or drawn around the joints)
    estimator = PoseEstimator(predictor=predictor, refine=args.refine)
    with_parts = estimator.part_names is not None
    if args.boxes == "detected":  # the user's photo without a box: detector, then 1 + refine crops per person

        def pose(r):
            return len(estimator(read_image(r.image), parts=with_parts))
        flow = f"no box: BlazePose's detector, then {1 + args.refine} crop(s) per person found (eval.api)"
    else:
        def pose(r):  # the box is the record's annotated centre / scale
            predictor.pose(read_image(r.image), r.center, r.scale, estimator.parts_from if with_parts else None)
            return 1
        flow = "the annotated box, one crop"
    for r in records[:3]:  # warm-up: first session runs pick and cache oneDNN kernels
        pose(r)
    start = time.perf_counter()
    people = sum(pose(r) for r in records)
    ms = 1000 * (time.perf_counter() - start) / max(1, people)
    m = cfg.MODEL
    parts = ("no parts" if not with_parts else "parts drawn around the joints" if estimator.parts_from == "skeleton"
             else f"parts from {m.PART_STAGES} part stages" if m.PART_STAGES else "parts from the part head")
    print(cpu_line())
    model = f"preset {cfg.PRESET} (random weights)" if args.preset else args.load or "the shipped model"
    print(f"predict: {model}, {predictor.geometry.input_size}px input, {args.precision}, {parts}, "
          f"{len(predictor.views)} view(s) (scales {args.scales}, flip {args.flip}), "
          f"{len(records)} images of the shipped LSP sample, {people} people; {flow}")
    versus = f"  {_versus(ms, args.peer, PREDICT_TARGET)}" if args.peer else ""
    print(f"  image file -> joints: {ms:7.1f} ms/person  ({1000 / ms:6.1f} people/s){versus}")


def bench_cold(args):
    import statistics  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    print(cpu_line())
    print(f"cold start: scripts/predict.py --image {args.image}{' --load ' + args.load if args.load else ''}, "
          f"a new process each time, median of {args.repeat}")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "predict.py")
    for label, extra in (("default (LiteRT where the model has model.tflite)", []),
                         ("--precision bf16 (TensorFlow)", ["--precision", "bf16"])):
        seconds = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeat):
                command = [sys.executable, script, "--image", args.image, "--out-json", os.path.join(tmp, "p.json")]
                command += (["--load", args.load] if args.load else []) + extra
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                seconds.append(time.perf_counter() - start)
                if done.returncode != 0:
                    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                    raise UserError(f"predict.py failed: {last.removeprefix('error: ')}")
        median = statistics.median(seconds)
        verdict = "met" if median <= COLD_TARGET else "missed"
        print(f"  {label:52s} {median:5.2f} s (min {min(seconds):.2f}; target <= {COLD_TARGET:g} s: {verdict}), "
              f"{len(done.stdout.splitlines())} lines printed")


# The run killed by ``resume``: 4 epochs of 25 steps, checkpoints every 3 s, small validation.
KILL_RUN_STEPS = 25  # per epoch
KILL_RUN_CONFIG = ["TRAIN.EPOCHS=4", f"TRAIN.STEPS_PER_EPOCH={KILL_RUN_STEPS}", "TRAIN.BATCH_SIZE=4",
                   "TRAIN.VAL_MAX_PEOPLE=8", "TRAIN.CHECKPOINT_MINUTES=0.05", "TRAIN.SUMMARY_PERIOD=1000",
                   "TRAIN.NUM_WORKERS=2"]


def bench_detect(args):
    """Recall of annotated people and false boxes per image of BlazePose and HOG on real photos. A person is found
    when a box holds the centre of its annotation and the box's side is 0.7-3x the annotated person's size."""
    from cpm.joints import UNANNOTATED
    from cpm.keypoints import LSP14
    from eval import blazepose
    from eval.people import detect_people

    records = []
    for data, datadir, split in (("coco", args.coco, "test_coco"), ("jhmdb", args.jhmdb, "test_jhmdb_sub1")):
        cfg = build_config(overrides=["READER.COCO_MIN_KEYPOINTS=0"])
        # at least 5 of lsp14's joints, as this benchmark has always counted them
        records += [r for r in model_people(records_from_args(argparse.Namespace(
            data=data, datadir=datadir, split=split, dataset_role="eval"), cfg.READER), LSP14)
                    if (r.joints[:, 2] != UNANNOTATED).sum() >= 5]
    images = sorted({str(r.image) for r in records})
    print(cpu_line())
    print(f"detect: {len(records)} annotated people (>= 5 joints) in {len(images)} images")
    for name, detector in (("BlazePose", blazepose.detect), ("HOG", detect_people)):
        found, false, seconds = 0, 0, 0.0
        detector(read_image(images[0]))  # load the model once
        for path in images:
            image = read_image(path)
            start = time.perf_counter()
            boxes = [b for b, _ in detector(image)]
            seconds += time.perf_counter() - start
            people = [r for r in records if str(r.image) == path]
            used = set()
            for r in people:
                size = r.scale * 200
                for k, (x, y, w, h) in enumerate(boxes):
                    inside = x <= r.center[0] <= x + w and y <= r.center[1] <= y + h
                    if k not in used and inside and 0.7 <= max(w, h) / size <= 3:
                        used.add(k)
                        found += 1
                        break
            false += len(boxes) - len(used)
        print(f"  {name:9s} recall {found}/{len(records)} ({100 * found / len(records):.0f} %), "
              f"{false / len(images):.2f} false boxes per image, {1000 * seconds / len(images):.1f} ms per image")


def bench_resume(args):
    import random
    import signal
    import subprocess
    import sys
    import tempfile

    from engine.resume import KILL_IN_SAVE_ENV, alive, descendants
    from engine.rundir import RunDir

    logdir = args.logdir or tempfile.mkdtemp(prefix="cpm-kill-")
    cmd = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py"), "--logdir", logdir,
           "--seed", "0", "--config", *KILL_RUN_CONFIG, *args.config]
    rng = random.Random(args.seed)
    in_save = rng.randrange(1, args.kills) if args.kill_in_save and args.kills > 1 else None
    resumed, leaked, lost, failures, expected_start, config = 0, 0, 0.0, [], 0, None
    for attempt in range(args.kills + 1):
        env = dict(os.environ)
        if attempt == in_save:
            env[KILL_IN_SAVE_ENV] = "2"  # dies by itself inside its second save
        log_path = os.path.join(logdir, f"attempt-{attempt}.log")
        os.makedirs(logdir, exist_ok=True)
        started = time.time()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            if attempt < args.kills and attempt != in_save:
                deadline = started + rng.uniform(3.0, 25.0)
                kids = []
                while time.time() < deadline and proc.poll() is None:
                    kids = descendants(proc.pid) or kids
                    time.sleep(0.1)
                kids = descendants(proc.pid) or kids
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=900)
            killed_at = time.time()
            kids = kids if attempt < args.kills and attempt != in_save else []
        with open(log_path) as f:
            text = f.read()
        if attempt > 0:  # did this attempt start where the previous one's newest checkpoint stood?
            found = re.search(r"resuming from \S*model-(\d+):", text)
            start = int(found.group(1)) if found else 0
            if start == expected_start:
                resumed += 1
            else:
                failures.append(f"attempt {attempt} resumed at step {start}, newest checkpoint was {expected_start}")
        if attempt == args.kills:
            if proc.returncode != 0:
                failures.append(f"the final attempt failed (exit {proc.returncode}); see {log_path}")
            break
        deadline = time.time() + 5.0  # the kernel delivers the death signal at once; allow for scheduling
        while any(alive(k) for k in kids) and time.time() < deadline:
            time.sleep(0.05)
        stray = [k for k in kids if alive(k)]
        leaked += len(stray)
        for k in stray:
            os.kill(k, signal.SIGKILL)
        path, expected_start = RunDir(logdir).resume_checkpoint(KILL_RUN_STEPS)
        saved_at = os.path.getmtime(os.path.join(logdir, "checkpoint")) if path else started
        lost = max(lost, killed_at - max(saved_at, started))
        now = RunDir(logdir).read_meta()["config"]
        if config is not None and now != config:
            failures.append(f"config.json changed after attempt {attempt}")
        config = now
    final = RunDir(logdir).stats()[-1]["global_step"]
    if final != 100:
        failures.append(f"the run ended at step {final}, not 100")
    print(cpu_line())
    print(f"resume: {args.kills} SIGKILLs{' (one inside a checkpoint save)' if in_save else ''}, run in {logdir}, "
          f"final step {final}")
    print(f"{resumed}/{args.kills} resumed, {leaked} processes leaked, at most {lost:.1f} s of training lost")
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures or leaked else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbose_argument(parser)
    sub = parser.add_subparsers(dest="what", required=True)
    data = sub.add_parser("data", help="data pipeline throughput")
    add_dataset_arguments(data)
    data.add_argument("--n", type=int, default=400, help="samples to time (default 400)")
    data.add_argument("--workers", type=int, default=0, help="worker processes (default: all cores)")
    add_config_arguments(data, preset_help="crop size and targets of")
    train = sub.add_parser("train", help="model step time")
    add_config_arguments(train, preset_help="network")
    add_precision_argument(train)
    train.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    # short bursts run faster than sustained training on shared or turbo-boosted CPUs: time enough steps
    train.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    train.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    train.add_argument("--backends", nargs="+", metavar="NAME",
                       help="time these backends side by side, each in its own process: all, onednn, eigen, xla, "
                            "xla-eigen (default: the one train.py trains on here: CPM_BACKEND, else the recorded "
                            "training choice)")
    train.add_argument("--max-isa", metavar="ISA", help="with --backends: cap oneDNN's and XLA's instruction sets "
                                                        "(e.g. AVX2, to measure an AVX2-only CPU's figures)")
    train.add_argument("--peer", type=float, nargs=2, metavar=("STEP", "INFERENCE"),
                       help="peer_cpm_torch.py's train and forward s/batch from this run: print ratio and target")
    predict = sub.add_parser("predict", help="single-person prediction time, image file to joints")
    add_load_argument(predict)
    add_config_arguments(predict, preset=None, preset_help="instead of a model: this preset's network, random weights")
    add_precision_argument(predict)
    predict.add_argument("--n", type=int, default=50, help="people to time (default 50)")
    predict.add_argument("--boxes", choices=["annotated", "detected"], default="annotated",
                         help="annotated (default): each person's annotated box; detected: the people found in "
                              "each image, as predict.py without --bbox")
    predict.add_argument("--refine", type=int, default=REFINE, help=f"with --boxes detected: crops after the first "
                                                                    f"(default {REFINE}, predict.py's)")
    predict.add_argument("--flip", action="store_true", help="also the mirrored crop, as evaluate/predict --flip")
    predict.add_argument("--scales", default="1.0", help="test-time zooms, as evaluate.py --scales (default 1.0)")
    predict.add_argument("--peer", type=float, metavar="MS",
                         help="peer_mediapipe.py's ms per image from this run: print ratio and target")
    detect = sub.add_parser("detect", help="person detector recall on real photos (COCO and JHMDB samples)")
    detect.add_argument("--coco", default="tests/fixtures/coco", help="COCO folder with test_coco.json")
    detect.add_argument("--jhmdb", default="tests/fixtures/jhmdb", help="JHMDB folder with test_jhmdb_sub1.json")
    cold = sub.add_parser("cold", help="seconds from the shell to one photo's joints (predict.py, new process)")
    add_load_argument(cold)
    cold.add_argument("--image", default=os.path.join(SAMPLE_LSP_DIR, "images", "im0001.jpg"),
                      help="the photo (default: the first image of the shipped LSP sample)")
    cold.add_argument("--repeat", type=int, default=5, help="runs to take the median of (default 5)")
    resume = sub.add_parser("resume", help="SIGKILL a short training run repeatedly; check that it resumes")
    resume.add_argument("--kills", type=int, default=10, help="SIGKILLs at random moments (default 10)")
    resume.add_argument("--kill-in-save", action="store_true", help="make one of them land inside a checkpoint save")
    resume.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    resume.add_argument("--logdir", help="run directory (default: a new temporary one)")
    add_config_argument(resume, help="config overrides on top of the killed run's (cpu preset) config")
    args = parser.parse_args()
    apply_verbosity(args)
    peers = getattr(args, "peer", None)
    if peers is not None and min(peers if isinstance(peers, list) else [peers]) <= 0:
        raise UserError("--peer: the peer's times must be positive")
    if args.what == "predict" and args.config and not args.preset:
        raise UserError("--config changes a --preset network; a model (--load, or the shipped one) keeps its own")
    if args.what == "resume":
        return bench_resume(args)
    if args.what == "predict":
        bench_predict(args)
    elif args.what == "detect":
        bench_detect(args)
    elif args.what == "cold":
        if args.repeat < 1:
            raise UserError("--repeat must be at least 1")
        bench_cold(args)
    elif args.what == "data":
        if args.n < 8:
            raise UserError("--n must be at least 8")
        bench_data(args)
    else:
        bench_train(args)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
