"""Assemble and launch tensorpack training of a CPM: run directory, data, callbacks, trainer."""
import math
import os
import time

import numpy as np
import tensorflow as tf
from tensorpack import (
    DEFAULT_CALLBACKS,
    QueueInput,
    SimpleTrainer,
    SyncMultiGPUTrainerReplicated,
    TrainConfig,
    launch_train_with_config,
)
from tensorpack.callbacks import HostMemoryTracker, ProgressBar, ScalarPrinter, ScheduledHyperParamSetter
from tensorpack.tfutils import SmartInit
from tensorpack.utils import logger

from cpm.checkpoint import CONFIG_FILE, best_checkpoint, load_run_config, load_weights
from cpm.config import flatten
from cpm.errors import UserError
from cpm.files import disk_full, is_disk_full
from cpm.joints import DERIVED
from cpm.keypoints import TRAINING_FIELDS, load_spec, spec_of
from cpm.model import CPMModel, adapt_joint_channels
from cpm.precision import cpu_description
from cpm.session import SessionCreator
from dataflow.geometry import Geometry
from dataflow.pipeline import build_train_dataflow
from dataflow.records import describe_mapping, model_people
from engine.distributed import ClusterTrainer
from engine.hooks import (
    BadSampleReport,
    PoseValidation,
    ReplicaCheck,
    RunStopper,
    StepSpeed,
    StopOnNonFiniteLoss,
    TrainingImages,
)
from engine.resume import (
    BestSaver,
    ClusterResume,
    ResumedProgressBar,
    ResumedTimeLeft,
    ShortenFirstEpoch,
    SignalStop,
    TimedModelSaver,
    TrainingClock,
    resume_point,
)
from engine.rundir import EventWriter, RunDir, StatsWriter, quiet_on_full_disk
from eval.evaluate import baseline_report, standard_metric
from eval.metrics import format_report


def _fixed_for_a_run(key):
    """Keys a continued run must keep: they define the network, its checkpoint variables or its data (of the keypoint
    spec, its training fields: _comparable)."""
    if key == "MODEL.PARTS_FROM":  # what a reader of the model paints, not what it trains
        return False
    return key in ("PRESET", "TRAIN.OPTIMIZER", "TRAIN.EMA_DECAY") or key.startswith(("DATA.", "MODEL.")) or \
        key in {f"KEYPOINTS.{k}" for k in TRAINING_FIELDS}


def _comparable(cfg):
    """A config flattened for comparing two sessions of a run: the keypoint spec as one key per field, so that a
    change of a field that only scores or draws (a built-in spec's OKS sigmas, say) does not stop a run resuming."""
    flat = flatten(cfg.to_dict())
    flat.update({f"KEYPOINTS.{k}": v for k, v in flat.pop("KEYPOINTS").items()})
    return flat


def split_validation(records, fraction):
    """Hold out ``fraction`` of ``records`` (at least one person) for validation.

    The permutation has a fixed seed, so a resumed or repeated run holds out the same people.
    Returns (train_records, val_records).
    """
    order = np.random.default_rng(0).permutation(len(records))
    n_val = max(1, int(round(fraction * len(records))))
    if len(records) - n_val < 1:
        raise UserError(f"{len(records)} people are too few to hold out a validation set")
    val = set(order[:n_val].tolist())
    return ([r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val])


def prepare_logdir(logdir, cfg, meta):
    """Create or reopen a run directory, hold its lock, and save the run's config there.

    A directory that a live trainer holds is refused (engine.rundir.RunBusy). A directory that holds a run with a
    different model, data or optimiser config is refused instead of overwritten; other TRAIN.* changes (epochs,
    learning rate, ...) are allowed and logged, so a run can be extended or calmed.

    Returns:
        (the locked RunDir, True if the directory already held a run, which then resumes from its last checkpoint).
    """
    run = RunDir(logdir)
    run.create()
    run.lock()
    run.set_aside_damaged_stats()
    resumed = run.has_config()
    sessions, argv = [], meta.get("argv")
    if resumed:
        # Read as loading reads it: keys added since the run take their defaults, renamed keys their new names; a
        # damaged config.json is a one-line error there.
        old = _comparable(load_run_config(logdir))
        saved = run.read_meta()
        # the command line that started the run stays: its --load is where the weights began (RunDir.started_from),
        # which a resuming command no longer names
        sessions, argv = saved.get("sessions", []), saved.get("argv", argv)
        new = _comparable(cfg)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        fatal = [k for k in changed if _fixed_for_a_run(k)]
        if fatal:
            raise UserError(f"logdir {logdir} holds a run with a different config ({', '.join(fatal)} differ); "
                            f"use another --logdir")
        if changed:
            logger.info(f"continuing the run in {logdir} with changed {', '.join(changed)}")
    # every process that trained the run: when, on which CPU, in which precision, from which step, by which command
    sessions.append({"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu_description(),
                     "precision": meta.get("precision"), "backend": meta.get("backend"),
                     "from_step": run.latest_checkpoint()[1], "argv": meta.get("argv")})
    run.write_meta({"config": cfg.to_dict(), **meta, "argv": argv, "sessions": sessions})
    return run, resumed


def lr_schedule(lr, decay_epochs, factor):
    """ScheduledHyperParamSetter schedule of the step decay: (epoch, value) pairs."""
    return [(0, lr)] + [(e, lr * factor ** (i + 1)) for i, e in enumerate(decay_epochs)]


def cosine_schedule(lr, start_epoch, epochs, final_factor, steps_per_epoch, warmup_epochs=0):
    """Step-based schedule of LR held until ``start_epoch``, then a cosine decay to ``lr * final_factor`` at the end
    of ``epochs``: (global step, value) pairs at epoch ends, interpolated linearly in between. With
    ``warmup_epochs`` the rate first rises from ``lr * final_factor`` to ``lr`` over those epochs, and the decay starts
    at the later of the two."""
    final = lr * final_factor
    start = max(start_epoch, warmup_epochs)
    if warmup_epochs:  # the loop below adds (start, lr): the warm-up's end unless the rate is then held
        points = [(0, final)] + ([(warmup_epochs * steps_per_epoch, lr)] if start > warmup_epochs else [])
    else:
        points = [(0, lr)] if start else []
    for e in range(start, epochs + 1):
        progress = (e - start) / (epochs - start)
        points.append((e * steps_per_epoch, final + (lr - final) * 0.5 * (1 + math.cos(math.pi * progress))))
    return points


def lr_setter(t, steps_per_epoch):
    """The learning-rate callback of TRAIN.LR_SCHEDULE (t: the TRAIN group)."""
    if t.LR_SCHEDULE == "cosine":
        return ScheduledHyperParamSetter(
            "learning_rate", cosine_schedule(t.LR, t.COSINE_START_EPOCH, t.EPOCHS, t.LR_FINAL_FACTOR, steps_per_epoch,
                                             t.WARMUP_EPOCHS),
            interp="linear", step_based=True)
    return ScheduledHyperParamSetter("learning_rate", lr_schedule(t.LR, t.LR_DECAY_EPOCHS, t.LR_DECAY_FACTOR))


def choose_keypoints(logdir, joints, base, train_records):
    """The keypoint spec a run trains, and why (a few words): a run directory's own when it resumes (a config.json from
    before specs: lsp14); else ``joints`` (--joints: a built-in name, a JSON file, or "data": the first training
    dataset's own; a --load'ed model of another set
    is then fine-tuned into it, fine_tune_init); else the model ``base`` (--load's config) predicts; else the first
    training person's own set. A ``joints`` that contradicts a resumed run is one line."""
    chosen = train_records[0].joint_set if joints == "data" else load_spec(joints) if joints else None
    if os.path.isfile(os.path.join(logdir, CONFIG_FILE)):
        spec = spec_of(load_run_config(logdir))
        if chosen is not None and chosen.training_fields() != spec.training_fields():
            raise UserError(f"--joints {joints}: the run in {logdir} trains {spec.name}; use another --logdir")
        return spec, "the run's own"
    if chosen is not None:
        return chosen, f"--joints {joints}" + (" (fine-tuned from the --load'ed model)" if base is not None else "")
    if base is not None:
        return spec_of(base), "the --load'ed model's"
    return train_records[0].joint_set, f"the joints of {train_records[0].dataset}, the first training data"


def fine_tune_init(load, spec):
    """The weights a run starts from when it fine-tunes ``load`` (a checkpoint prefix or weights.npz beside its
    config.json) into a model of ``spec``: every variable of the loaded model, its joint channels carried over by
    name where its joints differ (cpm.model.adapt_joint_channels), in one line of the log."""
    values = load_weights(load)
    old = spec_of(load_run_config(os.path.dirname(os.path.abspath(load))))
    if old.names == spec.names:
        return values
    # a joint the other set only names differently (DERIVED's one-to-one entries) keeps its channel too
    aliases = {n: next(iter(d)) for n, d in DERIVED.get((old.name, spec.name), {}).items()
               if len(d) == 1 and next(iter(d.values())) == 1.0 and n not in old.names}
    values, adapted = adapt_joint_channels(values, list(old.names), list(spec.names), aliases=aliases)
    shared = [n for n in spec.names if n in old.names or aliases.get(n) in old.names]
    fresh = [n for n in spec.names if n not in shared]
    logger.info(f"fine-tuning {load} ({old.name}) into {spec.name}: {len(values) - len(adapted)} variables restored "
                f"as they are, {len(adapted)} joint layers keep the channels of {len(shared)} shared joints"
                + (f" ({', '.join(f'{n} from {a}' for n, a in aliases.items())})" if aliases else "")
                + (f"; fresh: {', '.join(fresh)}" if fresh else ""))
    return values


def model_records(train_records, val_records, spec):
    """The records with the model's joints (dataflow.records.map_records), each mapping named in the log; training
    people left without an annotated joint (COCO people with only a face, for an lsp14 model) are dropped."""
    for line in describe_mapping(train_records + val_records, spec):
        logger.info(f"joints mapped onto the model's {spec.name}: {line}")
    train = model_people(train_records, spec)
    if not train:
        raise UserError(f"no training person has an annotated joint of the model's keypoint spec {spec.name}")
    if len(train) < len(train_records):
        logger.info(f"{len(train_records) - len(train)} training people have none of {spec.name}'s joints: left out")
    return train, model_people(val_records, spec)


def worker_share(cluster, train_records, steps, seed, logdir, meta):
    """This worker's part of a cluster run: every K-th training person (K workers, a different shard each), 1/K of
    the epoch's shared steps, seed + task, and for workers other than the chief a ``worker<task>`` subfolder for
    their own logs and stats. Without a cluster everything is returned unchanged.

    Returns:
        (train_records, steps, seed, logdir, meta with "shard" for a cluster).
    """
    if not cluster:
        return train_records, steps, seed, logdir, meta
    workers = cluster.count
    if len(train_records) < workers:
        raise UserError(f"{len(train_records)} training people are too few to give each of {workers} workers one")
    total = len(train_records)
    shard = train_records[cluster.task::workers]
    meta = dict(meta, shard={"task": cluster.task, "workers": workers, "people": len(shard), "of": total,
                             "first": str(shard[0].image)})
    logdir = logdir if cluster.is_chief else os.path.join(logdir, f"worker{cluster.task}")
    return shard, max(1, steps // workers), None if seed is None else seed + cluster.task, logdir, meta


def build_callbacks(cfg, geometry, val_records, steps, done, gpus, cluster, saver, clock):
    """The run's callbacks before the data's and the signal handler's (which train appends last), in order.

    Args:
        geometry: the model's dataflow.geometry.Geometry.
        steps: this worker's steps per epoch; done: steps of the starting epoch already done (shared steps).
    """
    t = cfg.TRAIN
    workers = cluster.count if cluster else 1
    metric = standard_metric(geometry.spec, val_records)
    callbacks = [
        StepSpeed(t.BATCH_SIZE * max(1, gpus), t.SUMMARY_PERIOD),
        ClusterResume(steps, workers) if cluster else ShortenFirstEpoch(done // workers),
        saver,
        PoseValidation(val_records, cfg, geometry),
        BestSaver(f"val/{metric}", best_checkpoint(metric)),
        lr_setter(t, steps * workers).set_chief_only(cluster is not None),  # one writer of the shared rate
        TrainingImages(geometry, t.SUMMARY_PERIOD),
        StopOnNonFiniteLoss(),
        clock,
        ResumedTimeLeft(),
        HostMemoryTracker(),
    ]
    if gpus > 1:
        callbacks.append(ReplicaCheck())
    return callbacks


def choose_trainer(gpus, cluster):
    """tensorpack's trainer for this run: one tower, replicated towers on ``gpus`` devices, or a cluster worker."""
    if cluster:
        return ClusterTrainer(list(range(max(1, gpus))), cluster.server, patience=cluster.patience)
    return SimpleTrainer() if gpus <= 1 else SyncMultiGPUTrainerReplicated(gpus)


def run_training(config, trainer, logdir, stoppers, bad_samples):
    """Launch the trainer; then raise, as one line, what stopped the run early: a full disk, then the first of the
    ``stoppers``' errors (a signal's first: it ends the process with its own status) and the data's."""
    try:
        launch_train_with_config(config, trainer)
    except (OSError, RuntimeError, tf.errors.OpError) as e:  # a write no writer of ours guards
        if not is_disk_full(e):
            raise
        raise disk_full(logdir) from None
    if bad_samples.count:
        logger.warn(bad_samples.summary())
    # a stop by a signal, a callback, a writer or the data (its input thread ends the queue) is raised here
    for error in [c.error for c in stoppers] + [bad_samples.error]:
        if error is not None:
            raise error


def train(cfg, train_records, val_records, logdir, load=None, precision="fp32", gpus=1, seed=None, meta=None,
          cluster=None):
    """Train (or resume training) a CPM under tensorpack.

    Args:
        cfg: finalized config.
        train_records, val_records: lists of PersonRecord.
        logdir: run directory; an existing run there is continued from its last checkpoint.
        load: checkpoint to initialise from when the run directory has none.
        precision: "fp32" or "bf16".
        gpus: >1 uses SyncMultiGPUTrainerReplicated.
        seed: seeds the weight initialisation and the augmentation (data workers still differ between runs).
        meta: extra JSON-able facts saved in config.json (data selection, command line).
        cluster: engine.distributed.Worker, to train as one worker of a cluster (worker_share): an epoch of
            TRAIN.STEPS_PER_EPOCH (or one pass over all K shards) shared steps takes each worker 1/K of them, and
            workers other than the chief keep their logs and stats apart, without checkpoints or validation.
    Returns:
        dict of the final validation scores and the mean-pose baseline.
    """
    t = cfg.TRAIN
    workers = cluster.count if cluster else 1
    steps = t.STEPS_PER_EPOCH or max(1, len(train_records) // t.BATCH_SIZE)
    train_records, steps, seed, logdir, meta = worker_share(cluster, train_records, steps, seed, logdir, meta or {})
    signals = SignalStop()  # from here on, Ctrl-C and SIGTERM stop the run cleanly
    try:  # the handlers go back on every way out, an error while the run is set up too
        run, resumed = prepare_logdir(logdir, cfg, meta)
        logger.set_logger_dir(logdir, action="k")
        quiet_on_full_disk()
        logger.info(f"config:\n{cfg}")
        if cluster:
            k, shard = cluster.task, meta["shard"]
            logger.info(f"worker {k} of {workers}: {steps} steps per epoch on {shard['people']} of {shard['of']} "
                        f"people (numbers {k}, {k + workers}, {k + 2 * workers}, ... of the selection)")
        val_records = val_records[:t.VAL_MAX_PEOPLE] if t.VAL_MAX_PEOPLE else val_records
        geometry = Geometry.from_config(cfg)
        train_records, val_records = model_records(train_records, val_records, geometry.spec)
        baseline = baseline_report(train_records, val_records, geometry)
        logger.info("\n" + format_report(baseline, "mean-pose baseline on validation"))
        checkpoint, starting_epoch, done = resume_point(logdir, steps * workers)
        if checkpoint:
            logger.info(f"resuming from {checkpoint}: epoch {starting_epoch}, {done} of its {steps} steps done")
            run.cut_stats((starting_epoch - 1) * steps * workers + done)
        if resumed and starting_epoch > t.EPOCHS:
            logger.info(f"{logdir} already finished {t.EPOCHS} epochs; raise TRAIN.EPOCHS to train longer")
            return {"baseline": baseline, "final": run.last_scores()}
        clock, stats = TrainingClock(), StatsWriter()
        saver = TimedModelSaver(t.CHECKPOINT_MINUTES, clock, stats, max_to_keep=t.KEEP_CHECKPOINTS,
                                keep_checkpoint_every_n_hours=1e6)
        monitors = [EventWriter(), stats, ScalarPrinter()]
        signals.attach(saver)
        callbacks = build_callbacks(cfg, geometry, val_records, steps, done, gpus, cluster, saver, clock)
        train_flow = build_train_dataflow(train_records, cfg, seed=seed, geometry=geometry)
        callbacks += [BadSampleReport(train_flow.bad_samples), signals]  # signals last: the step's own work is done
        # resuming continues the run's own checkpoint; --load starts a new run from a model's weights only
        init = checkpoint or (fine_tune_init(load, geometry.spec) if load else None)
        config = TrainConfig(
            model=CPMModel.from_config(cfg, geometry),
            data=QueueInput(train_flow),
            callbacks=callbacks,
            extra_callbacks=[ResumedProgressBar() if isinstance(c, ProgressBar) else c for c in DEFAULT_CALLBACKS()],
            monitors=monitors,
            steps_per_epoch=steps,
            max_epoch=t.EPOCHS,
            session_creator=SessionCreator(precision),
            starting_epoch=starting_epoch,
            # a fine-tuned layer whose shape no longer fits (another part scheme, say) starts fresh, with a warning
            **({"session_init": SmartInit(init, ignore_mismatch=not checkpoint)} if init else {}),
        )
        if seed is not None:
            tf.compat.v1.set_random_seed(seed)  # the trainer builds its graph in the default graph
        stoppers = [signals] + [c for c in callbacks + monitors if isinstance(c, RunStopper)]
        run_training(config, trainer=choose_trainer(gpus, cluster), logdir=logdir, stoppers=stoppers,
                     bad_samples=train_flow.bad_samples)
        return {"baseline": baseline, "final": run.last_scores()}
    finally:
        signals.restore()
