"""tensorpack callbacks: PCP validation every epoch, TensorBoard pictures, bad-sample reports, and clean stops.

They are thin: the metrics live in eval.metrics, the drawing in eval.draw, the decoding in eval.inference.
"""
import contextlib
import time

import cv2
import numpy as np
import tensorflow as tf
from tensorpack.callbacks import Callback
from tensorpack.train.base import StopTraining
from tensorpack.utils import logger

from cpm import names
from cpm.config import learned_parts
from cpm.errors import UserError
from eval.draw import belief_montage, belief_overlay, draw_skeleton, grid, part_overlay
from eval.evaluate import score
from eval.inference import PosePredictor
from eval.metrics import PART_FLOWS, format_part_report, format_report


class RunStopper(Callback):
    """Base of callbacks that end a run with an error: a UserError, or cpm.errors.Interrupted for a signal.

    tensorpack's main loop prints a traceback for any exception but its own StopTraining (a clean stop after which
    nothing more is saved), so these raise that and keep the error in ``error`` for the trainer to raise as one line.
    """

    error = None

    def stop(self, error):
        self.error = error
        raise StopTraining(str(error))


class PoseValidation(RunStopper):
    """Score the model on the validation people after every epoch (PCP, PCK@0.2, in original image px).

    Writes ``val/pcp``, ``val/pck@0.2``, ``val/pcp/<group>`` and, where the keypoint spec and the data give them,
    ``val/pckh@0.5`` (people with head sizes) and ``val/ap``, ``val/ap50``, ``val/ap75``, ``val/ar`` (COCO's
    keypoint AP) to the monitors (TensorBoard, stats.json) and part IoU against the part targets drawn around the
    annotated joints: with learned parts ``val/part_iou/<part>`` and ``val/mean_part_iou``, and where the keypoint
    spec has a part scheme the baseline drawn around the predicted joints, ``val/skeleton_part_iou/<part>`` and
    ``val/skeleton_mean_part_iou``; prints the table. It scores as evaluate.py does (eval.evaluate.score, one plain
    view per person), through the training graph's own tower.

    Args:
        records: the validation PersonRecords.
        cfg: the run's config; geometry: its dataflow.geometry.Geometry.
        title: first line of the printed table.
    """

    def __init__(self, records, cfg, geometry, title="validation"):
        self.records = records
        self.cfg = cfg
        self.geometry = geometry
        self.title = title

    def _setup_graph(self):
        outputs = list(names.predict_outputs(learned_parts(self.cfg)))
        network = self.trainer.get_predictor(list(names.PREDICT_INPUTS), outputs)
        self.predictor = PosePredictor(self.cfg, network=network, geometry=self.geometry)
        self.averages = _AveragedWeights() if self.cfg.TRAIN.EMA_DECAY else None

    def _trigger_epoch(self):
        start = time.perf_counter()
        try:
            # with weight averaging, the averages are what is scored (and what every reader of the checkpoint uses)
            with self.averages.in_place(self.trainer.sess) if self.averages else contextlib.nullcontext():
                report = score(self.predictor, self.records, progress=False).report
        except UserError as e:  # a validation image that cannot be read
            self.stop(e)
        put = self.trainer.monitors.put_scalar
        put("speed/validation_s", time.perf_counter() - start)
        for key in ("pcp", "pck@0.2", "pckh@0.5", "ap", "ap50", "ap75", "ar"):  # what the spec and data give
            if report.get(key) is not None and np.isfinite(report[key]):
                put(f"val/{key}", report[key])
        for group, value in report["per_limb"].items():
            put(f"val/pcp/{group}", value)
        text = format_report(report, f"{self.title}, epoch {self.epoch_num}")
        for flow, prefix in PART_FLOWS.items():
            if f"{prefix}part_iou" in report:
                for name, value in report[f"{prefix}part_iou"].items():
                    put(f"val/{prefix}part_iou/{name}", value)
                put(f"val/{prefix}mean_part_iou", report[f"{prefix}mean_part_iou"])
                if f"{prefix}silhouette_body_iou" in report:
                    put(f"val/{prefix}silhouette_body_iou", report[f"{prefix}silhouette_body_iou"])
                text += "\n" + format_part_report(report, flow)
        logger.info("\n" + text)


class _AveragedWeights:
    """The weights a run averages (cpm.model.AverageWeights) and their averages, swapped in for a while."""

    def __init__(self):
        variables = {v.name: v for v in tf.compat.v1.global_variables()}
        suffix = names.AVERAGE_SUFFIX + ":0"
        self.pairs = [(variables[name[:-len(suffix)] + ":0"], v) for name, v in variables.items()
                      if name.endswith(suffix) and name[:-len(suffix)] + ":0" in variables]
        self.use = tf.group(*[w.assign(a) for w, a in self.pairs])
        self.feeds = [tf.compat.v1.placeholder(w.dtype.base_dtype, w.shape) for w, _ in self.pairs]
        self.restore = tf.group(*[w.assign(f) for (w, _), f in zip(self.pairs, self.feeds, strict=True)])

    @contextlib.contextmanager
    def in_place(self, sess):
        live = sess.run([w for w, _ in self.pairs])
        sess.run(self.use)
        try:
            yield
        finally:
            sess.run(self.restore, dict(zip(self.feeds, live, strict=True)))


def _image_summary(tag, image_bgr):
    ok, png = cv2.imencode(".png", image_bgr)
    summary = tf.compat.v1.Summary()
    summary.value.add(tag=tag, image=tf.compat.v1.Summary.Image(
        height=image_bgr.shape[0], width=image_bgr.shape[1], colorspace=3, encoded_image_string=png.tobytes()))
    return summary


def _image_step(trainer, local_step, period):
    """Whether TrainingImages draws at this step (before it runs): every ``period`` of this process's steps (a
    cluster's shared step advances K at a time), on the chief alone (the callback is chief-only)."""
    return trainer.is_chief and local_step % period == 0


class TrainingImages(Callback):
    """Every ``period`` steps, put the training crops with ground-truth (white) and predicted skeletons, a montage
    of the first crop's final belief maps and, with part stages, target and predicted parts into TensorBoard.

    Args:
        geometry: the model's dataflow.geometry.Geometry (belief decoding, skeleton, part stages or not).
    """

    def __init__(self, geometry, period, max_images=4):
        self.geometry = geometry
        self.period = period
        self.max_images = max_images
        self.parts = geometry.part_names is not None

    def _setup_graph(self):
        tower = self.trainer.tower_func.towers[0]
        extra = [names.PARTS, names.FINAL_PARTS] if self.parts else []
        self._fetches = tower.get_tensors([names.IMAGE, names.BELIEFS, names.FINAL_BELIEFS] + extra)

    def _before_run(self, _):
        if _image_step(self.trainer, self.local_step, self.period):
            return tf.compat.v1.train.SessionRunArgs(fetches=self._fetches)
        return None

    def _after_run(self, _, values):
        if values.results is None:
            return
        images, targets, beliefs, *parts = (x[:self.max_images] for x in values.results)
        if parts:  # coloured parts: target | prediction (most probable class per cell)
            tiles = [np.hstack([part_overlay(im, t), part_overlay(im, p[:, :, :-1].argmax(axis=2))])
                     for im, t, p in zip(images, *parts, strict=True)]
            self.trainer.monitors.put_summary(_image_summary("train/parts", grid(tiles, columns=1)))
        tiles = []
        codec, spec = self.geometry.beliefs, self.geometry.spec
        for image, target, belief in zip(images, targets, beliefs, strict=True):
            truth = codec.decode(target)
            truth[:, 2] = np.where(target[:, :, :-1].max(axis=(0, 1)) > 0, 2, 0)
            drawn = draw_skeleton(image, truth, spec, thickness=1, color=(255, 255, 255))
            tiles.append(np.hstack([draw_skeleton(drawn, codec.decode(belief), spec), belief_overlay(image, belief)]))
        self.trainer.monitors.put_summary(_image_summary("train/skeletons", grid(tiles, columns=1)))
        self.trainer.monitors.put_summary(_image_summary("train/final_beliefs", belief_montage(beliefs[0], 64)))


class StepSpeed(Callback):
    """Training speed of the steps alone, written at each epoch end:

    - ``speed/images_per_s``: images per second of the training steps' session runs, leaving out the steps that also
      fetch TensorBoard images (TrainingImages, every ``summary_period`` steps) -- what ``benchmark.py train``
      measures for the same config;
    - ``speed/image_summary_s``: what each of those image steps took beyond an ordinary step, drawing included;
    - (PoseValidation writes ``speed/validation_s``, the validation pass.)

    Put it first in the callback list: the step's clock then starts before the other callbacks' before-run hooks
    and stops before their after-run work. Every worker of a cluster writes its own.
    """

    _chief_only = False

    def __init__(self, batch_size, summary_period):
        self.batch_size = batch_size
        self.summary_period = summary_period

    def _before_epoch(self):
        self._steps, self._seconds, self._image_steps, self._image_seconds = 0, 0.0, 0, 0.0

    def _before_run(self, _):
        self._image_step = _image_step(self.trainer, self.local_step, self.summary_period)
        self._start = time.perf_counter()

    def _after_run(self, *_):
        self._ran = time.perf_counter() - self._start

    def _trigger_step(self):
        if self._image_step:  # the step's whole time up to now: run, then drawing in TrainingImages' after-run
            self._image_steps += 1
            self._image_seconds += time.perf_counter() - self._start
        else:
            self._steps += 1
            self._seconds += self._ran

    def _trigger_epoch(self):
        if not self._steps:
            return
        step = self._seconds / self._steps
        self.trainer.monitors.put_scalar("speed/images_per_s", self.batch_size / step)
        if self._image_steps:
            self.trainer.monitors.put_scalar("speed/image_summary_s", self._image_seconds / self._image_steps - step)


class ReplicaCheck(Callback):
    """With several towers (SyncMultiGPUTrainerReplicated), ``train/replica_max_diff`` after each epoch: the largest
    absolute difference between a tower-0 variable and its copy in another tower (``tower<k>/<name>``), over every
    trainable variable and optimiser slot that has copies. The replicated trainer all-reduces the gradients, so the
    copies should stay equal up to float rounding; a warning names the variable that drifted furthest otherwise."""

    def __init__(self, tolerance=1e-4):
        self.tolerance = tolerance

    def _setup_graph(self):
        variables = tf.compat.v1.global_variables() + tf.compat.v1.local_variables()
        by_name = {v.name: v for v in variables}
        self._pairs = [(by_name[v.name.split("/", 1)[1]], v) for v in variables
                       if v.name.startswith("tower") and v.name.split("/", 1)[1] in by_name]

    def _trigger_epoch(self):
        if not self._pairs:
            return
        values = self.trainer.sess.run([[a, b] for a, b in self._pairs])
        diffs = [float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in values]
        worst = int(np.argmax(diffs))
        self.trainer.monitors.put_scalar("train/replica_max_diff", diffs[worst])
        if diffs[worst] > self.tolerance:
            logger.warn(f"replicas differ: {self._pairs[worst][1].name} is {diffs[worst]:.3g} from "
                        f"{self._pairs[worst][0].name}")


class StopOnNonFiniteLoss(RunStopper):
    """Stop training at the first step whose total loss is NaN or infinite, naming the losses that went first.

    Nothing is saved after that step, so the last checkpoint stays the last good one and re-running the same command
    resumes from it. Every worker of a cluster watches its own loss.
    """

    _chief_only = False

    def _setup_graph(self):
        tower = self.trainer.tower_func.towers[0]
        self._names = [names.TOTAL_COST] + _existing(tower, names.stage_loss) + _existing(tower, names.part_stage_loss)
        self._tensors = [tower.get_tensor(n) for n in self._names]

    def _before_run(self, _):
        return tf.compat.v1.train.SessionRunArgs(fetches=self._tensors)

    def _after_run(self, _, values):
        cost = values.results[0]
        if not np.isfinite(cost):
            bad = [n for n, v in zip(self._names[1:], values.results[1:], strict=True) if not np.isfinite(v)]
            self.stop(UserError(f"loss is {cost} at step {self.global_step} (non-finite: "
                            f"{', '.join(bad) or 'weight decay'}); stopped without saving. The last good checkpoint "
                            f"is in {logger.get_logger_dir()} (lower TRAIN.LR and re-run to resume)"))


class BadSampleReport(RunStopper):
    """Report the training records skipped as bad samples (dataflow.pipeline.BadSamples) at each epoch end: one log
    line naming the first files, and ``data/bad_samples`` (the count so far) in the monitors; stop the run when the
    filter has stopped the flow (TRAIN.BAD_SAMPLES=stop, or an unexpected error in a data worker). Every worker of a
    cluster reports on its own data."""

    _chief_only = False

    def __init__(self, bad_samples):
        self.bad = bad_samples
        self._reported = 0

    def _trigger_step(self):
        if self.bad.error is not None:
            self.stop(self.bad.error)

    def _trigger_epoch(self):
        self.trainer.monitors.put_scalar("data/bad_samples", self.bad.count)
        if self.bad.count > self._reported:
            logger.warn(self.bad.summary())
            self._reported = self.bad.count


def _existing(tower, name_of):
    """``name_of(1), name_of(2), ...`` up to the first name the tower has no tensor of."""
    found = []
    while True:
        try:
            tower.get_tensor(name_of(len(found) + 1))
        except KeyError:
            return found
        found.append(name_of(len(found) + 1))
