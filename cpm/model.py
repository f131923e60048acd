"""The six-stage Convolutional Pose Machine as a tensorpack ModelDesc.

Structure of the CPM release's deploy network (Wei et al. 2016; docs/references.md):

    image (S x S) -> VGG trunk (3 pools: stride 8) -> features F  [H x H x C_F]
    stage 1:  F -> 1x1 conv (STAGE1_WIDTH) -> 1x1 conv -> beliefs b1      [H x H x (K + 1)]
    stage t:  concat(b_{t-1}, F, centre map) -> STAGE_CONVS k x k convs (STAGE_WIDTH) -> 1x1 conv (STAGE_WIDTH)
              -> 1x1 conv -> beliefs b_t
    loss: sum over stages of sum(weights * (b_t - target)^2) / (2 B)   (Caffe's EuclideanLoss, per stage)

Part-segmentation stages (the extension; MODEL.PART_STAGES, 0 = none) follow the belief stages:

    part stage u:  concat(b_T, F, centre map, part logits p_{u-1} (from u = 2)) -> a refinement stage -> p_u
                   [H x H x (P + 2)]: P + 1 softmax logits (background + exclusive parts), 1 body logit
    loss: TRAIN.PART_LOSS_WEIGHT x mean over people (x part_weight) of the sum over cells of class-balanced softmax
          CE + body sigmoid CE (the belief loss's normalisation); its gradient reaches b_T and F scaled by
          MODEL.PART_GRADIENT (default 0: the part stages never change the keypoint layers)

The part head (MODEL.PART_HEAD, instead of part stages) segments at stride 4:

    part head:  concat(b_T, F, centre map) -> two 7x7 convs -> bilinear x2 -> concat(the trunk's stride-4 features,
                the skeleton drawn around the joints b_T gives) -> three 3x3 convs -> 1x1 conv -> [2H x 2H x (P + 2)]

with the part loss above on targets at that resolution. MODEL.FREEZE_KEYPOINTS trains the part layers alone on a
loaded keypoint network, which then stays exactly as it was.

Exclusive parts partition the person, so one softmax over background + parts gives every pixel exactly one label
and no double counting at part borders; the whole body overlaps all of them and cannot sit in that softmax, so it
has its own sigmoid. The centre map goes in too, as in belief stages 2+: it says which person to segment.

The trunk is trained from scratch here (no pretrained VGG can be downloaded), so its convs use He initialisation
rather than the release's N(0, 0.01), which does not train a 16-layer ReLU stack from scratch.
"""
import contextlib

import numpy as np
import tensorflow as tf
from tensorpack import ModelDesc
from tensorpack.models import BatchNorm, BNReLU, Conv2D, MaxPooling, regularize_cost
from tensorpack.tfutils import argscope, get_current_tower_context
from tensorpack.tfutils.optimizer import ProxyOptimizer
from tensorpack.tfutils.summary import add_moving_summary

from cpm import names
from cpm.config import STRIDE

TRUNK_CONVS = (2, 2, 4, 2, 4, 1)  # convs per trunk block; blocks 1-3 end with a 2x2 max-pool: stride 8
PIXEL_MEAN, PIXEL_SCALE = 128.0, 256.0  # CPM input normalisation: (px - 128) / 256


def trunk(x, widths):
    """VGG front of the CPM release. x: float32 [B, S, S, 3] -> (features [B, S/8, S/8, widths[-1]], the third
    block's output before its pool [B, S/4, S/4, widths[2]], which the part head reads)."""
    for block, (count, width) in enumerate(zip(TRUNK_CONVS, widths, strict=True), start=1):
        for i in range(1, count + 1):
            x = Conv2D(f"conv{block}_{i}", x, width, 3)
        if block == 3:
            stride4 = x
        if block <= 3:
            x = MaxPooling(f"pool{block}", x, 2)
    return x, stride4


def stage(scope, x, width, kernel, convs, channels):
    """One refinement stage: ``convs`` k x k convs, a 1x1 conv, and a linear 1x1 conv to ``channels`` maps."""
    with tf.compat.v1.variable_scope(scope):
        for i in range(1, convs + 1):
            x = Conv2D(f"conv{i}", x, width, kernel)
        x = Conv2D(f"conv{convs + 1}", x, width, 1)
        return Conv2D("out", x, channels, 1, activation=tf.identity, use_bias=True, kernel_initializer=_OUT_INIT)


def _scale_gradient(x, factor):
    """x in the forward pass; its gradient multiplied by ``factor`` in the backward pass."""
    if factor == 1:
        return x
    if factor == 0:
        return tf.stop_gradient(x)
    return factor * x + (1 - factor) * tf.stop_gradient(x)


# Output layers start small, so initial beliefs are near 0 and the first losses are those of an all-zero guess.
_OUT_INIT = tf.compat.v1.random_normal_initializer(stddev=0.01)


class CPMModel(ModelDesc):
    """Six-stage CPM with intermediate supervision.

    Args:
        input_size: px, S; num_joints: K, the keypoint spec's joints.
        stages, trunk_widths, stage1_width, stage_width, stage_kernel, stage_convs: MODEL.* values.
        optimizer, lr, momentum, weight_decay: TRAIN.* values.
        part_stages: part stages; num_parts: P, the part scheme's exclusive parts.
        part_head: the part head instead (part_head_width channels), drawing ``parts`` (the scheme's cpm.parts.Part,
            radii times ``part_width``) around the decoded joints as one of its inputs.
        freeze_keypoints: train the part layers only (the trunk and belief stages frozen: _frozen_keypoints).
    """

    def __init__(self, *, input_size, num_joints, stages, trunk_widths, stage1_width, stage_width, stage_kernel,
                 stage_convs, batch_norm=False, optimizer="momentum", lr=8e-5, momentum=0.9, weight_decay=5e-4,
                 part_stages=0, num_parts=0, part_loss_weight=1.0, part_gradient=0.0, part_head=0, part_head_width=32,
                 parts=(), part_width=1.0, freeze_keypoints=False, part_loss="balanced", part_head_jitter=0.0,
                 ema_decay=0.0):
        self.input_size = input_size
        self.map_size = input_size // STRIDE
        self.num_joints = num_joints
        self.stages = stages
        self.trunk_widths = list(trunk_widths)
        self.stage1_width = stage1_width
        self.stage_width = stage_width
        self.stage_kernel = stage_kernel
        self.stage_convs = stage_convs
        self.batch_norm = batch_norm
        self.optimizer_name = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.part_stages = part_stages
        self.num_parts = num_parts
        self.part_loss_weight, self.part_balance = part_loss_weight, part_loss == "balanced"
        self.part_gradient = part_gradient
        self.part_head, self.part_head_width, self.part_head_jitter = part_head, part_head_width, part_head_jitter
        self.parts, self.part_width = tuple(parts), part_width
        self.freeze_keypoints = freeze_keypoints
        self.ema_decay = ema_decay
        # the learned part maps: the belief maps' grid for part stages, twice as fine for the head
        self.part_map_size = self.map_size * 2 if part_head else self.map_size

    @classmethod
    def from_config(cls, cfg, geometry):
        """The model of a config; its shapes come from ``geometry`` (dataflow.geometry.Geometry: input size,
        stride, joints, parts), which this module reads but cannot import."""
        if geometry.stride != STRIDE or geometry.map_size != geometry.input_size // STRIDE:
            raise ValueError(f"the network's output stride is {STRIDE}, the geometry's {geometry.stride}")
        m, t = cfg.MODEL, cfg.TRAIN
        return cls(input_size=geometry.input_size, num_joints=geometry.num_joints, stages=m.STAGES,
                   trunk_widths=m.TRUNK_WIDTHS,
                   stage1_width=m.STAGE1_WIDTH, stage_width=m.STAGE_WIDTH, stage_kernel=m.STAGE_KERNEL,
                   stage_convs=m.STAGE_CONVS, batch_norm=m.BATCH_NORM, optimizer=t.OPTIMIZER, lr=t.LR,
                   momentum=t.MOMENTUM, weight_decay=t.WEIGHT_DECAY, part_stages=m.PART_STAGES,
                   num_parts=geometry.num_parts, part_loss_weight=t.PART_LOSS_WEIGHT, part_loss=t.PART_LOSS,
                   part_gradient=m.PART_GRADIENT, part_head=m.PART_HEAD, part_head_width=m.PART_HEAD_WIDTH,
                   parts=geometry.spec.parts(geometry.part_scheme) if m.PART_HEAD else (),
                   part_width=geometry.part_width, freeze_keypoints=m.FREEZE_KEYPOINTS,
                   part_head_jitter=m.PART_HEAD_JITTER, ema_decay=t.EMA_DECAY)

    def inputs(self):
        s, h, c = self.input_size, self.map_size, self.num_joints + 1
        specs = [tf.TensorSpec((None, s, s, 3), tf.uint8, names.IMAGE),
                 tf.TensorSpec((None, h, h, c), tf.float32, names.BELIEFS),
                 tf.TensorSpec((None, c), tf.float32, names.WEIGHTS),
                 tf.TensorSpec((None, h, h, 1), tf.float32, names.CENTER_MAP)]
        if self.part_stages or self.part_head:
            p = self.part_map_size
            specs += [tf.TensorSpec((None, p, p), tf.uint8, names.PARTS),
                      tf.TensorSpec((None,), tf.float32, names.PART_WEIGHT)]
        return specs

    def predict(self, image, center_map):
        """Belief maps of every stage, then part logits of every part stage.

        image uint8 [B, S, S, 3], center_map [B, H, H, 1] -> (list of [B, H, H, K + 1], list of [B, H', H', P + 2];
        H' = H for part stages, 2H for the part head).
        """
        x = (tf.cast(image, tf.float32) - PIXEL_MEAN) / PIXEL_SCALE
        he = tf.compat.v1.variance_scaling_initializer(scale=2.0, distribution="untruncated_normal")
        hidden = dict(activation=BNReLU, use_bias=False) if self.batch_norm else dict(activation=tf.nn.relu)
        with argscope(Conv2D, kernel_initializer=he, **hidden):
            with _frozen_keypoints(self.freeze_keypoints):
                features, stride4 = trunk(x, self.trunk_widths)
                with tf.compat.v1.variable_scope("stage1"):
                    b = Conv2D("conv1", features, self.stage1_width, 1)
                    b = Conv2D("out", b, self.num_joints + 1, 1, activation=tf.identity, use_bias=True,
                               kernel_initializer=_OUT_INIT)
                outputs = [tf.identity(b, name=names.stage_beliefs(1))]
                for t in range(2, self.stages + 1):
                    x = tf.concat([outputs[-1], features, center_map], axis=3)
                    b = stage(f"stage{t}", x, self.stage_width, self.stage_kernel, self.stage_convs,
                              self.num_joints + 1)
                    outputs.append(tf.identity(b, name=names.stage_beliefs(t)))
            parts = []
            # The part loss reaches the shared layers (trunk, belief stages) scaled by part_gradient: 0 keeps them
            # purely keypoint-trained, so parts cannot cost keypoint accuracy (docs/parts.md has the runs).
            shared = [_scale_gradient(outputs[-1], self.part_gradient), _scale_gradient(features, self.part_gradient)]
            for u in range(1, self.part_stages + 1):
                x = tf.concat(shared + [center_map] + parts[-1:], axis=3)
                parts.append(stage(f"part{u}", x, self.stage_width, self.stage_kernel, self.stage_convs,
                                   self.num_parts + 2))
            if self.part_head:
                parts.append(self.head(*shared, _scale_gradient(stride4, self.part_gradient), center_map))
        tf.identity(outputs[-1], name=names.FINAL_BELIEFS)
        if parts:
            tf.concat([tf.nn.softmax(parts[-1][..., :-1]), tf.sigmoid(parts[-1][..., -1:])], axis=3,
                      name=names.FINAL_PARTS)
        return outputs, parts

    def head(self, beliefs, features, stride4, center_map):
        """The part head: part logits [B, 2H, 2H, P + 2] at stride 4 from the final beliefs and the trunk's features
        (stride 8, [B, H, H, .]) with the centre map, its stride-4 features [B, 2H, 2H, .], and the skeleton drawn
        around the joints the beliefs give (drawn_skeleton), so that it starts from what the joints say and learns
        from the image where the parts lie."""
        w = self.part_head_width
        with tf.compat.v1.variable_scope("part_head"):
            x = tf.concat([beliefs, features, center_map], axis=3)
            x = Conv2D("coarse1", x, w, 7)  # context at stride 8: a 7 x 7 kernel spans 56 px of the crop
            x = Conv2D("coarse2", x, w, 7)
            # half-pixel centres: cell g of stride 8 (px 8 g + 3.5) lands on px 8 g + 3.5 of the stride-4 grid
            x = tf.image.resize(x, [self.part_map_size] * 2, method="bilinear")
            drawn = self.drawn_skeleton(beliefs)
            x = tf.concat([x, stride4, drawn], axis=3)
            for i in range(1, 4):
                x = Conv2D(f"fine{i}", x, w, 3)
            learned = Conv2D("out", x, self.num_parts + 2, 1, activation=tf.identity, use_bias=True,
                             kernel_initializer=_OUT_INIT)
            # plus the drawn skeleton's own logits, set up to give its labels: the head starts from them and learns
            # corrections (deep layers alone, given the drawing, stayed on the background prior)
            kernel, bias = self._skeleton_logits()
            with _frozen_keypoints(True):  # fixed: the learned layers add the corrections
                start = Conv2D("skeleton", drawn, self.num_parts + 2, 1, activation=tf.identity, use_bias=True,
                               kernel_initializer=tf.compat.v1.constant_initializer(kernel),
                               bias_initializer=tf.compat.v1.constant_initializer(bias))
            return learned + start

    def _skeleton_logits(self):
        """(kernel [1, 1, P, P + 2], bias [P + 2]) of the 1x1 conv that maps the drawn skeleton (1 - d per part) to
        logits whose arg-max is the drawn labels (a part where its 1 - d exceeds 5 %, the body where any does)."""
        p, gain = self.num_parts, 10.0
        kernel = np.zeros((1, 1, p, p + 2), np.float32)
        kernel[0, 0, np.arange(p), np.arange(p) + 1] = gain
        kernel[0, 0, :, p + 1] = gain
        bias = np.zeros(p + 2, np.float32)
        bias[0], bias[p + 1] = 0.05 * gain, -0.05 * gain
        return kernel, bias

    def drawn_skeleton(self, beliefs):
        """The parts drawn around the joints of ``beliefs`` [B, H, H, K + 1], as the part targets are drawn around
        annotated ones (dataflow.targets.PartCodec): on the part head's grid, each part's 1 - d clipped at 0, d the
        distance from its nearest bone in units of that bone's radius (0 inside its polygon); the joints are the
        arg-max of the beliefs resized to the grid, the person's size their extent. Returns [B, 2H, 2H, P]."""
        n, k = self.part_map_size, self.num_joints
        cell = self.input_size / n
        maps = tf.image.resize(beliefs[..., :k], [n, n], method="bilinear")
        peak = tf.argmax(tf.reshape(maps, [-1, n * n, k]), axis=1, output_type=tf.int32)  # B x K
        centre = lambda g: tf.cast(g, tf.float32) * cell + (cell - 1) / 2  # noqa: E731  (px of cell g)
        jx, jy = centre(peak % n), centre(peak // n)  # B x K, crop px
        if self.part_head_jitter and get_current_tower_context().is_training:
            jx = jx + tf.random.normal(tf.shape(jx), stddev=self.part_head_jitter)
            jy = jy + tf.random.normal(tf.shape(jy), stddev=self.part_head_jitter)
        extent = tf.maximum(tf.reduce_max(jx, 1) - tf.reduce_min(jx, 1), tf.reduce_max(jy, 1) - tf.reduce_min(jy, 1))
        size = tf.maximum(extent, 1.0)[:, None, None]  # B x 1 x 1
        grid = centre(tf.range(n))
        gx, gy = grid[None, None, :], grid[None, :, None]  # 1 x 1 x n, 1 x n x 1
        joint = lambda j: (jx[:, j, None, None], jy[:, j, None, None])  # noqa: E731
        drawn = []
        for part in self.parts:
            d = None
            for a, b, radius in part.bones:
                (ax, ay), (bx, by) = joint(a), joint(b)
                ux, uy = bx - ax, by - ay
                # plain ops only (TFLite and ONNX have them all): a zero-length bone divides by 1e-6, t stays 0
                t = tf.clip_by_value(((gx - ax) * ux + (gy - ay) * uy) / tf.maximum(ux * ux + uy * uy, 1e-6), 0.0,
                                     1.0)
                dist = tf.sqrt(tf.square(gx - ax - t * ux) + tf.square(gy - ay - t * uy))
                dist = dist / (radius * self.part_width * size)
                d = dist if d is None else tf.minimum(d, dist)
            if part.polygon:  # crossing-number test of every grid point against the polygon
                inside = tf.zeros_like(d, tf.bool)
                corners = [joint(j) for j in part.polygon]
                for (xi, yi), (xj, yj) in zip(corners, corners[1:] + corners[:1], strict=True):
                    flat = tf.cast(tf.equal(yj, yi), tf.float32)  # a level edge crosses no row: its division is moot
                    crosses = tf.logical_and(tf.not_equal(yi > gy, yj > gy),
                                             gx < xi + (xj - xi) * (gy - yi) / (yj - yi + flat))
                    inside = tf.math.logical_xor(inside, crosses)
                d = tf.where(inside, tf.zeros_like(d), d)
            drawn.append(tf.nn.relu(1.0 - d))
        return tf.stack(drawn, axis=3)

    def part_loss(self, u, logits, labels, weight):
        """Loss of part stage ``u``: weighted mean over people and pixels of softmax CE (parts) + sigmoid CE (body)."""
        labels = tf.cast(labels, tf.int32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits[..., :-1])
        # Each part covers 1-4 % of the cells: unweighted, the classifier sits on the background prior for epochs.
        # Inverse class frequencies of the batch (people without part targets left out), normalised to a mean cell
        # weight of 1, balance them (SegNet-style frequency balancing) without changing the loss's scale.
        if self.part_balance:
            counted = tf.cast(weight, tf.float32)[:, None, None] * tf.ones_like(ce)
            counts = tf.math.unsorted_segment_sum(tf.reshape(counted, [-1]), tf.reshape(labels, [-1]),
                                                  self.num_parts + 1)
            inverse = tf.where(counts > 0, 1.0 / tf.maximum(counts, 1.0), tf.zeros_like(counts))
            cell_w = tf.gather(inverse, labels)
            cell_w = tf.stop_gradient(cell_w * tf.reduce_sum(counted) /
                                      tf.maximum(tf.reduce_sum(cell_w * counted), 1e-6))
            ce = ce * cell_w
        fg = tf.cast(labels > 0, tf.float32)
        body = tf.nn.sigmoid_cross_entropy_with_logits(labels=fg, logits=logits[..., -1])
        # Summed over the map's cells and averaged over people, as the belief loss is: the two keep their ratio at
        # every input size. (A per-pixel mean at weight 10 left the part stages predicting the class prior after 12
        # epochs: too weak a signal for the shared trunk.)
        per_person = tf.reduce_sum(ce + body, axis=[1, 2])  # B
        return tf.multiply(self.part_loss_weight, tf.reduce_mean(weight * per_person), name=names.part_stage_loss(u))

    def build_graph(self, image, beliefs, weights, center_map, parts=None, part_weight=None):
        outputs, part_logits = self.predict(image, center_map)
        if not get_current_tower_context().is_training:
            return None
        batch = tf.cast(tf.shape(image)[0], tf.float32)
        w = weights[:, None, None, :]  # B x 1 x 1 x (K+1)
        losses = [tf.divide(tf.reduce_sum(w * tf.square(b - beliefs)), 2.0 * batch, name=names.stage_loss(t))
                  for t, b in enumerate(outputs, start=1)]
        losses += [self.part_loss(u, p, parts, part_weight) for u, p in enumerate(part_logits, start=1)]
        # weight_decay / 2 * sum(W^2)
        wd = regularize_cost(".*/W", lambda w: self.weight_decay * tf.nn.l2_loss(w), name="weight_decay") \
            if self.weight_decay > 0 else tf.constant(0.0)
        cost = tf.add_n(losses + [wd], name=names.TOTAL_COST)
        add_moving_summary(*losses, wd, cost)
        return cost

    def optimizer(self):
        lr = tf.compat.v1.get_variable("learning_rate", initializer=float(self.lr), trainable=False)
        tf.compat.v1.summary.scalar("learning_rate-summary", lr)  # the variable owns the plain name
        opt = tf.compat.v1.train.AdamOptimizer(lr) if self.optimizer_name == "adam" else \
            tf.compat.v1.train.MomentumOptimizer(lr, self.momentum)
        opt = SkipNonFiniteUpdates(opt)
        return AverageWeights(opt, self.ema_decay) if self.ema_decay else opt


@contextlib.contextmanager
def _frozen_keypoints(frozen):
    """With ``frozen``, the layers built inside train no more (the keypoint layers of MODEL.FREEZE_KEYPOINTS, the part
    head's fixed start): their variables stay out of TRAINABLE_VARIABLES (no
    update, no weight decay: regularize_cost reads that collection) and batch normalisation runs on its moving
    statistics, which it does not update; the keypoint outputs are then exactly the loaded model's."""
    if not frozen:
        yield
        return
    def untrainable(getter, *args, **kwargs):
        kwargs["trainable"] = False
        return getter(*args, **kwargs)

    scope = tf.compat.v1.get_variable_scope()  # the same scope, so that the variables keep their names
    with tf.compat.v1.variable_scope(scope, custom_getter=untrainable, auxiliary_name_scope=False), \
            argscope(BatchNorm, training=False):
        yield


class AverageWeights(ProxyOptimizer):
    """After each step, move an exponential moving average of every trainable weight and every batch-norm statistic
    towards it (tf.train.ExponentialMovingAverage, rate 1 - decay, the decay ramped as min(decay, (1 + step) /
    (10 + step)) so that the average starts near the first weights). The averages are variables
    ``<weight>`` + names.AVERAGE_SUFFIX of the checkpoint: cpm.checkpoint.load_weights reads them in the weights'
    place. A cluster's workers keep their batch-norm statistics local: there the weights alone are averaged."""

    _applied = False  # replicated towers apply equal gradients: the first tower's weights are averaged for all

    def __init__(self, opt, decay):
        super().__init__(opt)
        self.decay = decay

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        grads_and_vars = list(grads_and_vars)
        update = self._opt.apply_gradients(grads_and_vars, global_step, name)
        if self._applied:
            return update
        self._applied = True
        weights = [v for g, v in grads_and_vars if g is not None]
        # batch-norm statistics beside the weights; a cluster's towers keep theirs local: those are not averaged
        shared = {v.name for v in tf.compat.v1.global_variables()} - {v.name for v in weights}
        statistics = [v for v in tf.compat.v1.model_variables() if v.name.endswith(("/mean/EMA:0", "/variance/EMA:0"))
                      and v.name in shared]
        step = tf.compat.v1.train.get_or_create_global_step()
        ema = tf.compat.v1.train.ExponentialMovingAverage(self.decay, num_updates=step)
        with tf.control_dependencies([update]):
            return ema.apply(weights + statistics)


class SkipNonFiniteUpdates(ProxyOptimizer):
    """Apply a step's update only if every gradient is finite; count the skipped steps in ``skipped_updates``.

    oneDNN's bf16 training on AMX CPUs sporadically returns a NaN gradient from a finite forward pass (seen once in
    every few hundred steps); applied, it would turn the weights and every later loss into NaN. Mixed-precision
    optimisers skip such steps (Keras' LossScaleOptimizer does); in fp32 a finite gradient leaves this a no-op.
    """

    _skipped = None  # the counter, made by the first tower's call: replicated towers apply all-reduced (equal)
    #                  gradients, so they skip together and the first counts for all

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        grads_and_vars = list(grads_and_vars)
        finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g, _ in grads_and_vars
                                         if g is not None]))
        first = self._skipped is None
        if first:
            self._skipped = tf.compat.v1.get_variable("skipped_updates", initializer=tf.constant(0, tf.int64),
                                                      trainable=False)
            tf.compat.v1.summary.scalar("skipped_updates-summary", self._skipped)

        def apply():
            with tf.control_dependencies([self._opt.apply_gradients(grads_and_vars, global_step)]):
                return tf.identity(finite)

        def skip():
            with tf.control_dependencies([self._skipped.assign_add(1)] if first else []):
                return tf.identity(finite)

        return tf.cond(finite, apply, skip, name=name)


def count_parameters(graph=None):
    """Number of trainable parameters in a graph (default: the current one)."""
    graph = graph or tf.compat.v1.get_default_graph()
    with graph.as_default():
        return int(sum(v.shape.num_elements() for v in tf.compat.v1.trainable_variables()))


def adapt_joint_channels(values, old_names, new_names, seed=0, aliases=None):
    """A model's variables ``values`` ({name: array}) reshaped from joints ``old_names`` to ``new_names``: the layers
    whose channels are joints (each stage's ``out``, and the belief inputs at the front of every later stage's and
    part stage's ``conv1``) keep the channels of the joints both sets share, by name or through ``aliases`` ({new
    joint: the old joint it is}, e.g. MPII's upper_neck: lsp14's neck), and the background's; a new
    joint's channels start as a fresh layer would (``out``: N(0, 0.01) and a zero bias, as _OUT_INIT; a ``conv1``
    input: N(0, the std of the layer's belief inputs)). Every other variable is returned as it is.

    Returns:
        (adapted values, names of the variables that were adapted).
    """
    rng = np.random.default_rng(seed)
    k_old, k_new = len(old_names), len(new_names)
    # new channel -> old channel (joints by name, then the background), or -1 for a new joint
    aliases = aliases or {}
    source = [old_names.index(n) if n in old_names else old_names.index(aliases[n]) if aliases.get(n) in old_names
              else -1 for n in new_names] + [k_old]
    out, adapted = dict(values), []
    for name, v in values.items():
        scope, layer = name.split("/")[0], name.split("/")[1] if "/" in name else ""
        beliefs_out = scope.startswith("stage") and layer == "out"
        beliefs_in = layer == "conv1" and name.split("/")[-1].startswith("W") and (
            scope.startswith("part") or (scope.startswith("stage") and scope != "stage1"))
        if not (beliefs_out or beliefs_in):
            continue
        axis = v.ndim - 1 if beliefs_out else 2
        if v.shape[axis] < k_old + 1:
            continue
        shape = list(v.shape)
        shape[axis] += k_new - k_old
        if beliefs_out:
            fresh = np.zeros(shape, v.dtype) if v.ndim == 1 else rng.normal(0, 0.01, shape).astype(v.dtype)
        else:
            belief_w = np.take(v, range(k_old + 1), axis=axis)
            fresh = rng.normal(0, float(belief_w.std()), shape).astype(v.dtype)
        for new, old in enumerate(source):
            if old >= 0:
                index = [slice(None)] * v.ndim
                index[axis] = new
                fresh[tuple(index)] = np.take(v, old, axis=axis)
        rest = [slice(None)] * v.ndim  # what follows the beliefs in a conv1's input: features, centre map, parts
        rest[axis] = slice(k_new + 1, None)
        fresh[tuple(rest)] = np.take(v, range(k_old + 1, v.shape[axis]), axis=axis)
        out[name] = fresh
        adapted.append(name)
    return out, adapted
