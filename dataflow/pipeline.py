"""tensorpack DataFlows from person records to CPM batches.

Training flow (``build_train_dataflow``), one datapoint after batching:
    image       uint8   [B, S, S, 3]        BGR crop, S = the geometry's input size (368)
    beliefs     float32 [B, H, H, K + 1]    belief maps, H = S / STRIDE (46), K the spec's joints, last background
    weights     float32 [B, K + 1]          loss weight per channel: 0 for unannotated joints
    center_map  float32 [B, H, H, 1]        pooled centre-map Gaussian at the person centre
  with learned parts (part stages: H' = H; the part head: H' = 2H):
    parts       uint8   [B, H', H']         part labels on the part maps' cells (0 background, k + 1 part k)
    part_weight float32 [B]                 0 where a part's joints are unannotated (no part target then)

The crops and targets come from dataflow.mapper. Evaluation predicts from the records themselves
(eval.evaluate.predict_records); its mapper (``make_mapper(records, geometry)``) gives the deterministic crop's part
targets on every crop pixel.
"""
from tensorpack.dataflow import (
    BatchData,
    DataFlowTerminated,
    DataFromList,
    MapData,
    MultiProcessMapDataZMQ,
    ProxyDataFlow,
)

from cpm.errors import BadSample, UserError
from dataflow import workers
from dataflow.geometry import Geometry
from dataflow.mapper import BAD_SAMPLE, FAILED_SAMPLE, is_marker, make_mapper


class BadSamples(ProxyDataFlow):
    """Drops the markers of records the mapper could not use and counts them, or stops at the first one.

    With ``stop`` (TRAIN.BAD_SAMPLES=stop, and always in evaluation) the first bad record ends the flow; an
    unexpected mapping error always does. With ``quiet_end`` (the trainer's input thread, which prints a traceback for
    any exception) the flow ends with DataFlowTerminated and the error waits in ``error`` for the trainer to raise;
    otherwise the error is raised.
    """

    def __init__(self, ds, stop, quiet_end=False, hint=""):
        super().__init__(ds)
        self.stop, self.quiet_end, self.hint = stop, quiet_end, hint
        self.count, self.first, self.error = 0, [], None

    def __iter__(self):
        for dp in self.ds:
            if not is_marker(dp):
                yield dp
                continue
            kind, message = dp
            if kind == BAD_SAMPLE:
                self.count += 1
                if len(self.first) < 3:
                    self.first.append(message)
            if kind == FAILED_SAMPLE or self.stop:
                self.error = BadSample(message if kind == FAILED_SAMPLE else f"bad sample {message}{self.hint}")
                if self.quiet_end:
                    raise DataFlowTerminated()
                raise self.error

    def summary(self):
        """One line: how many records were skipped, naming the first few."""
        return f"skipped {self.count} bad sample{'s' * (self.count != 1)}: {'; '.join(self.first)}" + \
            (" ..." if self.count > len(self.first) else "")


def mapped_indices(indices, mapper, num_workers, shuffle, strict):
    """DataFlow of ``mapper(i)`` for i in ``indices``, in ``num_workers`` processes (0: in this one).

    With workers and ``strict=False`` the flow never ends (tensorpack repeats it so workers stay busy across epochs);
    ``strict=True`` yields every index exactly once per pass, in any order.
    """
    indices = list(indices)
    ds = DataFromList(indices, shuffle=shuffle)
    if num_workers == 0:
        return MapData(ds, mapper)
    workers.install()  # workers die with this process and receive msgpack, not pickle
    # tensorpack's strict mode needs the buffer to be no larger than one pass.
    buffer_size = max(1, min(len(indices), 4 * num_workers)) if strict else 4 * num_workers
    return MultiProcessMapDataZMQ(ds, num_workers, mapper, buffer_size=buffer_size, strict=strict)


def build_train_dataflow(records, cfg, seed=None, geometry=None):
    """Training batches (see the module docstring), reshuffled every pass, last partial batch dropped.

    With TRAIN.NUM_WORKERS > 0 the flow is endless (the trainer's steps_per_epoch sets the epoch); with 0 it maps in
    the calling process and ends after one pass. Records that cannot become a sample are skipped or stop the flow as
    TRAIN.BAD_SAMPLES says; the returned flow's ``bad_samples`` is that BadSamples filter (its count, first files and
    error), ended quietly for tensorpack's input thread. ``geometry``: the model's (default: the config's).
    """
    if len(records) < cfg.TRAIN.BATCH_SIZE:
        raise UserError(f"{len(records)} training people are fewer than one batch of TRAIN.BATCH_SIZE="
                        f"{cfg.TRAIN.BATCH_SIZE}")
    mapper = make_mapper(records, geometry or Geometry.from_config(cfg), cfg.AUG, seed=seed)
    ds = mapped_indices(range(len(records)), mapper, cfg.TRAIN.NUM_WORKERS, shuffle=True, strict=False)
    bad = BadSamples(ds, stop=cfg.TRAIN.BAD_SAMPLES == "stop", quiet_end=True,
                     hint=" (TRAIN.BAD_SAMPLES=skip would skip it)")
    flow = BatchData(bad, cfg.TRAIN.BATCH_SIZE, remainder=False)
    flow.bad_samples = bad
    return flow
