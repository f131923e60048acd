"""The one configuration of a run: every key with its default, unit and options.

Usage (build_config is the one entry point; get_config and finalize are its two halves):
    cfg = build_config("cpu", ["AUG.ROTATE_MAX=30", "TRAIN.BATCH_SIZE=8"])   # preset, overrides, checked, frozen

Overrides are parsed with ``ast.literal_eval`` and must keep the default's type (an int is accepted for a float);
unknown keys are an error. Leaf code never reads this object: scripts, DataFlow assembly and the ModelDesc pass
plain values on.
"""
import ast
import json

from cpm.errors import UserError
from cpm.keypoints import DEFAULT_SPEC, KeypointSpec

#: px of input per output cell of the network: cpm.model's trunk pools three times by 2 (here, not there, so that
#: checking a config needs no TensorFlow)
STRIDE = 8


class ConfigError(UserError):
    """A bad key or value in the configuration."""


class Group:
    """An ordered group of config keys with attribute access; nested groups are Groups themselves."""

    def __init__(self, **items):
        object.__setattr__(self, "_items", dict(items))
        object.__setattr__(self, "_frozen", False)

    def __getattr__(self, name):
        items = object.__getattribute__(self, "_items")
        if name in items:
            return items[name]
        raise AttributeError(f"no config key {name!r}")

    def __setattr__(self, name, value):
        if self._frozen:
            raise ConfigError(f"config is frozen; cannot set {name}")
        if name not in self._items:
            raise ConfigError(f"unknown config key {name!r}")
        self._items[name] = value

    def items(self):
        return self._items.items()

    def freeze(self, frozen=True):
        object.__setattr__(self, "_frozen", frozen)
        for v in self._items.values():
            if isinstance(v, Group):
                v.freeze(frozen)

    def to_dict(self):
        return {k: v.to_dict() if isinstance(v, Group) else v for k, v in self._items.items()}

    def _lookup(self, dotted):
        """Return (group, key) for a dotted key, raising ConfigError naming the key if it does not exist."""
        *path, key = dotted.split(".")
        group = self
        for part in path:
            sub = group._items.get(part)
            if not isinstance(sub, Group):
                raise ConfigError(f"unknown config key {dotted!r}")
            group = sub
        if key not in group._items or isinstance(group._items[key], Group):
            raise ConfigError(f"unknown config key {dotted!r}")
        return group, key

    def set(self, dotted, value):
        """Set a dotted key to a value of the default's type (int accepted for float; None only where allowed)."""
        group, key = self._lookup(dotted)
        group.__setattr__(key, _coerce(dotted, group._items[key], value))

    def override(self, pairs):
        """Apply ``KEY=VALUE`` strings, e.g. ``["TRAIN.BATCH_SIZE=8", "DATA.JOINT_SIGMAS=[7.0]*14"]``."""
        for pair in pairs:
            if "=" not in pair:
                raise ConfigError(f"config override {pair!r} is not KEY=VALUE")
            key, text = pair.split("=", 1)
            key = key.strip()
            self._lookup(key)
            try:
                value = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                value = text.strip()  # a bare word is a string: PRECISION=bf16
            self.set(key, value)

    def __repr__(self):
        d = self.to_dict()
        if isinstance(d.get("KEYPOINTS"), dict):  # the spec's name and size, not its 100 lines
            d["KEYPOINTS"] = f"{d['KEYPOINTS'].get('name')} ({len(d['KEYPOINTS'].get('joints', []))} joints)"
        return json.dumps(d, indent=2)


def _coerce(key, default, value):
    if isinstance(default, dict):  # KEYPOINTS: a spec's JSON form, checked by finalize
        if isinstance(value, dict):
            return value
        raise ConfigError(f"config key {key} takes a keypoint spec (a JSON object), got {value!r}")
    # Keys whose default is None hold an optional list of numbers; a list of ints stays a list of ints.
    if isinstance(default, (list, tuple)) and all(isinstance(v, int) for v in default):
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return list(value)
        raise ConfigError(f"config key {key} takes a list of integers, got {value!r}")
    if default is None or isinstance(default, (list, tuple)):
        if value is None:
            return None
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            return [float(v) for v in value]
        raise ConfigError(f"config key {key} takes a list of numbers or None, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    raise ConfigError(f"config key {key} takes a {type(default).__name__}, got {value!r}")


def flatten(d, prefix=""):
    """A nested config dict as dotted keys: {"A": {"B": 1}} -> {"A.B": 1}. Groups are the dicts whose keys are all
    upper case; any other dict (KEYPOINTS' spec) is one value."""
    out = {}
    for k, v in d.items():
        group = isinstance(v, dict) and v and all(str(key).isupper() for key in v)
        out.update(flatten(v, f"{prefix}{k}.") if group else {f"{prefix}{k}": v})
    return out


def get_config(preset="paper"):
    """A fresh, unfrozen configuration: the defaults (the reference CPM) with a preset's values applied.

    Presets:
        paper: the CPM release's six-stage VGG-trunk network at 368 px, trained as in the release.
        cpu:   the same structure, narrower, at 184 px, with batch norm and Adam: learns on 2 CPU cores in minutes.
        lsp:   the cpu network trained as the shipped LSP model was (LSPET + LSP, a long run with a cosine decay).
        lsp-fast: wider belief stages, no part stages, one cosine over 26 epochs with campaign 2's augmentation.
        lsp-wide: lsp-fast with a trunk twice as wide.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    cfg = _defaults()
    for key, value in PRESETS[preset].items():
        cfg.set(key, value)
    cfg.PRESET = preset
    return cfg


PRESETS = {
    "paper": {},
    # Half the input size and narrower layers, for CPUs. The belief sigma stays 7 px, 0.875 of a map cell as in the
    # reference (halved, the one-cell peaks did not train); batch norm makes the from-scratch trunk train (no ImageNet
    # VGG weights can be downloaded). docs/recipe.md has the measurements.
    "cpu": {
        "DATA.INPUT_SIZE": 184,
        "DATA.CENTER_SIGMA": 10.5,
        "DATA.TARGET_DIST": 41 / 70,
        "MODEL.BATCH_NORM": True,
        "MODEL.TRUNK_WIDTHS": [16, 32, 64, 64, 64, 32],
        "MODEL.STAGE1_WIDTH": 128,
        "MODEL.STAGE_WIDTH": 32,
        "TRAIN.OPTIMIZER": "adam",
        "TRAIN.LR": 1e-3,
        "TRAIN.LR_DECAY_EPOCHS": [20, 27],
        "TRAIN.WEIGHT_DECAY": 1e-5,
        "TRAIN.BATCH_SIZE": 16,
        "TRAIN.EPOCHS": 30,
        "TRAIN.STEPS_PER_EPOCH": 40,
    },
}
# The shipped LSP model's recipe (docs/recipe.md has the comparisons that chose it): the cpu network, one pass over
# the training people per epoch, Adam held at 1e-3 and then a cosine decay over the last third.
PRESETS["lsp"] = {
    **PRESETS["cpu"],
    "TRAIN.STEPS_PER_EPOCH": 0,
    "TRAIN.EPOCHS": 60,
    "TRAIN.LR_SCHEDULE": "cosine",
    "TRAIN.COSINE_START_EPOCH": 40,
}
# The from-scratch recipe meant to reach a good model in half campaign 1's training (docs/recipe.md, round 4):
# stages twice as wide (more learnt per image seen: round 3 matched the baseline in two thirds of its steps), no part
# stages (the shipped model paints the parts drawn around its joints; a step is a sixth shorter), one cosine over the
# whole run, and campaign 2's frame cut and photometric augmentation from the start.
PRESETS["lsp-fast"] = {
    **PRESETS["lsp"],
    "MODEL.STAGE_WIDTH": 64,
    "MODEL.PART_STAGES": 0,
    "MODEL.PARTS_FROM": "skeleton",
    "TRAIN.EPOCHS": 26,
    "TRAIN.COSINE_START_EPOCH": 0,
    "AUG.FRAME_CUT_PROB": 0.3,
    "AUG.BLUR_PROB": 0.2,
    "AUG.NOISE_PROB": 0.2,
    "AUG.JPEG_PROB": 0.2,
}
# lsp-fast with the trunk twice as wide: more learnt per image seen (docs/recipe.md, round 5: 3 points of validation
# PCK@0.2 at equal images, decayed), for a step about 1.7x as long; campaign 3 starts from it.
PRESETS["lsp-wide"] = {
    **PRESETS["lsp-fast"],
    "MODEL.TRUNK_WIDTHS": [32, 64, 128, 128, 128, 64],
}


#: Old dotted key -> its new name, applied when a saved run config is read (cpm.checkpoint.load_run_config), so run
#: directories and shipped models from before a rename still load and resume.
RENAMED_KEYS = {}


def _defaults():
    return Group(
        PRESET="paper",  # name of the preset the run started from (set by get_config; recorded in config.json)
        # the joints the model predicts: a keypoint spec's JSON form (cpm.keypoints); a config.json from before
        # specs has none and so is LSP's 14, as every run then was
        KEYPOINTS=DEFAULT_SPEC.to_dict(),
        DATA=Group(
            INPUT_SIZE=368,  # px, side of the square network input (CPM: 368)
            STRIDE=8,  # px of input per belief-map cell (CPM: 8 -> 46x46 maps)
            SIGMA=7.0,  # px of input, Gaussian sigma of every belief map (CPM: 7)
            JOINT_SIGMAS=None,  # None (SIGMA x the spec's sigmas), or px of input, one per joint in KEYPOINTS' order
            CENTER_SIGMA=21.0,  # px of input, Gaussian sigma of the centre map (CPM: 21)
            TARGET_DIST=41 / 35,  # crop px per (200 * scale) original px / 200: a person of scale s is 234 px tall
            PAD_VALUE=128,  # grey level of the border when the crop leaves the image (CPM: 128)
            VAL_FRACTION=0.1,  # fraction of training records held out for validation when no --val-data is given
            PART_WIDTH=1.0,  # multiplier of the bone radii of the skeleton-derived part targets (cpm.parts)
        ),
        READER=Group(
            JHMDB_FRAME_STRIDE=1,  # use every k-th annotated frame of a JHMDB video (official layout)
            # COCO-format files: people with fewer labelled keypoints are skipped (a set of fewer keypoints: people
            # without all of them); below 5 of COCO's 17 most of a model's channels would have no target and the
            # box, not the body, decides the crop
            COCO_MIN_KEYPOINTS=5,
            COCO_SKIP_CROWD=True,  # skip COCO crowd regions (iscrowd = 1: many people under one mask, no keypoints)
        ),
        AUG=Group(
            SCALE_MIN=0.7,  # random zoom factor range (CPM: 0.7-1.3)
            SCALE_MAX=1.3,
            ROTATE_MAX=40.0,  # degrees; uniform in +-ROTATE_MAX (CPM: 40)
            FLIP_PROB=0.5,  # probability of a horizontal flip with left/right swap (CPM: 0.5)
            SHIFT_MAX=0.0,  # px of crop; uniform shift of the person off the crop centre (CPM release: 40)
            COLOR_PROB=0.5,  # probability of colour jitter (gamma, contrast, brightness)
            COLOR_GAMMA=0.3,  # gamma drawn from [1 - g, 1 + g]
            COLOR_CONTRAST=0.3,  # contrast factor drawn from [1 - c, 1 + c]
            COLOR_BRIGHTNESS=0.1,  # brightness shift drawn from +-b * 255 grey levels
            BBOX_PAD_PROB=0.0,  # probability of random person-box padding (MARS pose trainer)
            BBOX_PAD_MIN=0.0,  # pad per side as a fraction of the box side, drawn from [MIN, MAX]
            BBOX_PAD_MAX=0.3,
            BLUR_PROB=0.0,  # probability of a Gaussian blur
            BLUR_MAX_KERNEL=7,  # px, largest odd kernel side (3..MAX)
            NOISE_PROB=0.0,  # probability of additive Gaussian noise
            NOISE_STD=10.0,  # grey levels, noise standard deviation drawn from [0, NOISE_STD]
            JPEG_PROB=0.0,  # probability of re-encoding as JPEG (compression artefacts)
            JPEG_QUALITY_MIN=20,  # JPEG quality range, 1..100
            JPEG_QUALITY_MAX=80,
            # A user's tightly cropped photo: the image cut to the annotated joints' box plus a margin drawn from
            # [0, FRAME_CUT_MARGIN] of its width / height a side, so that the crop's padding starts at the person
            FRAME_CUT_PROB=0.0,
            FRAME_CUT_MARGIN=0.15,
        ),
        MODEL=Group(
            STAGES=6,  # belief stages, each with its own loss (CPM: 6)
            # Output channels of the trunk's six blocks: 2 convs + pool, 2 convs + pool, 4 convs + pool, 2 convs,
            # 4 convs, 1 conv (the CPM release's VGG-19 front: 64, 128, 256, 512, 256 (conv4_3-4_6), 128)
            TRUNK_WIDTHS=[64, 128, 256, 512, 256, 128],
            STAGE1_WIDTH=512,  # channels of stage 1's 1x1 conv (CPM: conv5_1_CPM, 512)
            STAGE_WIDTH=128,  # channels of the convs of stages 2.. (CPM: 128)
            STAGE_KERNEL=7,  # px of the belief map, kernel side of stages 2.. (CPM: 7)
            STAGE_CONVS=5,  # k x k convs per stage before its two 1x1 convs (CPM: 5)
            BATCH_NORM=False,  # batch normalisation after every hidden conv (CPM: none)
            PART_STAGES=2,  # part-segmentation stages after the belief stages; 0 trains the plain CPM
            # 1: instead of part stages, the part head (docs/parts.md): parts at stride 4 from the final beliefs, the
            # trunk's stride-4 features and the skeleton drawn around the decoded joints; 0: none
            PART_HEAD=0,
            PART_HEAD_WIDTH=32,  # channels of the part head's convs
            # px (of the crop) of random Gaussian offsets added in training to the joints the part head draws its
            # skeleton around: the joints of training people are near perfect, those of new people are not, and the
            # head learns from the image to mend a drawing only where it sees one that needs mending
            PART_HEAD_JITTER=0.0,
            # train only the part layers: the trunk and belief stages keep their (loaded) weights, batch-norm
            # statistics included, and take no weight decay, so the joints stay exactly as they were
            FREEZE_KEYPOINTS=False,
            # a part scheme of KEYPOINTS: seed7 (head, torso, arms, legs) | limbs (upper/lower arms and legs); + body
            PART_SCHEME="seed7",
            # share of the part loss's gradient that reaches the trunk and belief stages: 0 = parts never change the
            # keypoint layers (with 1, PCP fell 3 points in a 12-epoch run on the sample)
            PART_GRADIENT=0.0,
            # what predict, the API and export-free prediction paint as parts: learned (the model's part output,
            # where it has one) | skeleton (capsules drawn around the predicted joints, eval.inference.drawn_parts);
            # ship.py sets the better of the two on validation in the model folder it writes
            PARTS_FROM="learned",
        ),
        TRAIN=Group(
            BATCH_SIZE=16,  # crops per step (CPM: 16)
            NUM_WORKERS=2,  # processes that map records to crops; 0 maps in the main process
            EPOCHS=100,  # epochs to train
            STEPS_PER_EPOCH=0,  # steps per epoch; 0 = one pass over the training people
            OPTIMIZER="momentum",  # momentum | adam
            LR=8e-5,  # base learning rate (CPM: 8e-5 with momentum)
            MOMENTUM=0.9,  # momentum of the momentum optimiser (CPM: 0.9)
            LR_SCHEDULE="step",  # step: x LR_DECAY_FACTOR at each of LR_DECAY_EPOCHS | cosine: see COSINE_START_EPOCH
            LR_DECAY_EPOCHS=[50, 80],  # epochs at which the learning rate is multiplied by LR_DECAY_FACTOR
            LR_DECAY_FACTOR=0.333,  # (CPM: step decay x 0.333)
            # cosine: LR held until this epoch, then a cosine decay to LR * LR_FINAL_FACTOR at the end of EPOCHS
            # (warm-up-free "stable, then decay": an open-ended run keeps its LR until the decay is scheduled)
            COSINE_START_EPOCH=0,
            LR_FINAL_FACTOR=0.01,
            # cosine only: the rate rises linearly from LR * LR_FINAL_FACTOR to LR over the first WARMUP_EPOCHS (a
            # higher peak's first steps from random weights), and the cosine starts no earlier than its end
            WARMUP_EPOCHS=0,
            WEIGHT_DECAY=5e-4,  # L2 weight decay on conv kernels (CPM: 5e-4)
            # weight averaging: each step, every weight's average moves to it by 1 - EMA_DECAY (the rate ramps up from
            # 0.1 over the first steps); the epoch report, the best checkpoint and every model read from the run's
            # checkpoints (evaluate, predict, export, ship) use the averaged weights. 0: off
            EMA_DECAY=0.0,
            PART_LOSS_WEIGHT=1.0,  # weight of each part stage's loss (cross-entropy summed over cells, as the beliefs')
            # the parts' cross-entropy: balanced (each class weighted by its inverse frequency in the batch) | plain
            PART_LOSS="balanced",
            KEEP_CHECKPOINTS=3,  # most recent checkpoints kept (the best validation one is kept apart)
            CHECKPOINT_MINUTES=10.0,  # also checkpoint once this long has passed since the last save; 0 = epoch ends
            SUMMARY_PERIOD=50,  # steps between TensorBoard image summaries
            VAL_MAX_PEOPLE=0,  # cap on validation people scored each epoch; 0 = all
            # a training record whose image is missing, empty, truncated or undecodable, or whose joints are NaN or
            # far outside the image: skip (counted; each epoch's log names the first files) | stop (one-line error).
            # skip: one bad file among 11,000 should not end a days-long run, and the count keeps it visible
            BAD_SAMPLES="skip",
        ),
    )


def learned_parts(cfg):
    """Whether the model of ``cfg`` has a learned part output (part stages or the part head)."""
    return bool(cfg.MODEL.PART_STAGES or cfg.MODEL.PART_HEAD)


def part_layers(part_stages, part_head):
    """The learned part layers of MODEL.PART_STAGES and MODEL.PART_HEAD, in words (model cards, benchmarks)."""
    if part_head:
        return "a part head"
    return f"{part_stages} part stage{'' if part_stages == 1 else 's'}" if part_stages else "no part layers"


def build_config(preset="paper", overrides=(), base=None, keypoints=None):
    """The run's config: a preset (or ``base``, e.g. a loaded model's config, copied), the keypoint spec
    ``keypoints`` (a cpm.keypoints.KeypointSpec; a spec without part schemes trains no part stages), then
    ``KEY=VALUE`` overrides, checked and frozen. What every script calls."""
    cfg = get_config(base.PRESET if base is not None else preset)
    for key, value in flatten(base.to_dict() if base is not None else {}).items():
        cfg.set(key, value)
    if keypoints is not None:
        cfg.KEYPOINTS = keypoints.to_dict()
        if cfg.MODEL.PART_SCHEME not in keypoints.part_schemes:
            cfg.MODEL.PART_STAGES = cfg.MODEL.PART_HEAD = 0
    cfg.override(overrides)
    return finalize(cfg)


def finalize(cfg):
    """Check values and freeze. Raises ConfigError naming the first bad key."""
    d, a = cfg.DATA, cfg.AUG

    def require(ok, key, why):
        if not ok:
            raise ConfigError(f"config key {key}: {why}")

    spec = KeypointSpec.from_dict(cfg.KEYPOINTS)  # a bad spec is its own one line
    cfg.KEYPOINTS = spec.to_dict()  # normalised (every field written out) and this config's own copy

    require(d.INPUT_SIZE > 0 and d.INPUT_SIZE % d.STRIDE == 0, "DATA.INPUT_SIZE",
            "must be a positive multiple of STRIDE")
    require(d.SIGMA > 0, "DATA.SIGMA", "must be > 0")
    require(d.JOINT_SIGMAS is None or (len(d.JOINT_SIGMAS) == spec.num_joints and min(d.JOINT_SIGMAS) > 0),
            "DATA.JOINT_SIGMAS", f"must be None or {spec.num_joints} positive numbers")
    require(d.CENTER_SIGMA > 0, "DATA.CENTER_SIGMA", "must be > 0")
    require(d.TARGET_DIST > 0, "DATA.TARGET_DIST", "must be > 0")
    require(0 <= d.PAD_VALUE <= 255, "DATA.PAD_VALUE", "must be a grey level 0..255")
    require(0 <= d.VAL_FRACTION < 1, "DATA.VAL_FRACTION", "must be in [0, 1)")
    require(0 < a.SCALE_MIN <= a.SCALE_MAX, "AUG.SCALE_MIN", "need 0 < SCALE_MIN <= SCALE_MAX")
    require(0 <= a.ROTATE_MAX <= 180, "AUG.ROTATE_MAX", "must be in [0, 180]")
    require(a.SHIFT_MAX >= 0, "AUG.SHIFT_MAX", "must be >= 0")
    for key in ("FLIP_PROB", "COLOR_PROB", "BBOX_PAD_PROB", "BLUR_PROB", "NOISE_PROB", "JPEG_PROB", "FRAME_CUT_PROB"):
        require(0 <= getattr(a, key) <= 1, f"AUG.{key}", "must be a probability in [0, 1]")
    require(0 <= a.COLOR_GAMMA < 1 and 0 <= a.COLOR_CONTRAST < 1 and a.COLOR_BRIGHTNESS >= 0,
            "AUG.COLOR_*", "need 0 <= GAMMA, CONTRAST < 1 and BRIGHTNESS >= 0")
    require(0 <= a.BBOX_PAD_MIN <= a.BBOX_PAD_MAX, "AUG.BBOX_PAD_MIN", "need 0 <= BBOX_PAD_MIN <= BBOX_PAD_MAX")
    require(a.BLUR_MAX_KERNEL >= 3, "AUG.BLUR_MAX_KERNEL", "must be >= 3")
    require(a.NOISE_STD >= 0, "AUG.NOISE_STD", "must be >= 0")
    require(a.FRAME_CUT_MARGIN >= 0, "AUG.FRAME_CUT_MARGIN", "must be >= 0")
    require(1 <= a.JPEG_QUALITY_MIN <= a.JPEG_QUALITY_MAX <= 100, "AUG.JPEG_QUALITY_MIN",
            "need 1 <= JPEG_QUALITY_MIN <= JPEG_QUALITY_MAX <= 100")
    require(cfg.READER.JHMDB_FRAME_STRIDE >= 1, "READER.JHMDB_FRAME_STRIDE", "must be >= 1")
    require(cfg.READER.COCO_MIN_KEYPOINTS >= 0, "READER.COCO_MIN_KEYPOINTS", "must be >= 0")
    m, t = cfg.MODEL, cfg.TRAIN
    require(d.PART_WIDTH > 0, "DATA.PART_WIDTH", "must be > 0")
    require(m.PART_STAGES >= 0, "MODEL.PART_STAGES", "must be >= 0 (0: no part segmentation)")
    require(m.PART_HEAD in (0, 1), "MODEL.PART_HEAD", "must be 0 or 1")
    require(not (m.PART_HEAD and m.PART_STAGES), "MODEL.PART_HEAD", "replaces the part stages: set MODEL.PART_STAGES=0")
    require(m.PART_HEAD_WIDTH >= 1, "MODEL.PART_HEAD_WIDTH", "must be >= 1")
    require(m.PART_HEAD_JITTER >= 0, "MODEL.PART_HEAD_JITTER", "must be >= 0")
    require(not m.FREEZE_KEYPOINTS or learned_parts(cfg), "MODEL.FREEZE_KEYPOINTS",
            "trains only the part layers: the model needs part stages or the part head")
    require(not learned_parts(cfg) or m.PART_SCHEME in spec.part_schemes, "MODEL.PART_SCHEME",
            f"must be a part scheme of the keypoint spec {spec.name} ({', '.join(spec.part_schemes) or 'it has none'}; "
            f"MODEL.PART_STAGES=0 trains without parts)")
    require(t.PART_LOSS_WEIGHT >= 0, "TRAIN.PART_LOSS_WEIGHT", "must be >= 0")
    require(t.PART_LOSS in ("balanced", "plain"), "TRAIN.PART_LOSS", "must be balanced or plain")
    require(0 <= t.EMA_DECAY < 1, "TRAIN.EMA_DECAY", "must be in [0, 1) (0: no weight averaging)")
    require(0 <= m.PART_GRADIENT <= 1, "MODEL.PART_GRADIENT", "must be in [0, 1]")
    require(m.PARTS_FROM in ("learned", "skeleton"), "MODEL.PARTS_FROM", "must be learned or skeleton")
    require(m.STAGES >= 1, "MODEL.STAGES", "must be >= 1")
    require(len(m.TRUNK_WIDTHS) == 6 and min(m.TRUNK_WIDTHS) > 0, "MODEL.TRUNK_WIDTHS", "must be 6 positive widths")
    require(m.STAGE1_WIDTH > 0 and m.STAGE_WIDTH > 0, "MODEL.STAGE_WIDTH", "widths must be > 0")
    require(m.STAGE_KERNEL % 2 == 1, "MODEL.STAGE_KERNEL", "must be odd")
    require(m.STAGE_CONVS >= 1, "MODEL.STAGE_CONVS", "must be >= 1")
    require(d.STRIDE == STRIDE, "DATA.STRIDE", f"must be {STRIDE}: the trunk pools three times")
    require(t.BATCH_SIZE > 0, "TRAIN.BATCH_SIZE", "must be > 0")
    require(t.NUM_WORKERS >= 0, "TRAIN.NUM_WORKERS", "must be >= 0")
    require(t.EPOCHS >= 1, "TRAIN.EPOCHS", "must be >= 1")
    require(t.STEPS_PER_EPOCH >= 0, "TRAIN.STEPS_PER_EPOCH", "must be >= 0")
    require(t.OPTIMIZER in ("momentum", "adam"), "TRAIN.OPTIMIZER", "must be momentum or adam")
    require(t.LR > 0, "TRAIN.LR", "must be > 0")
    require(t.LR_SCHEDULE in ("step", "cosine"), "TRAIN.LR_SCHEDULE", "must be step or cosine")
    require(list(t.LR_DECAY_EPOCHS) == sorted(t.LR_DECAY_EPOCHS), "TRAIN.LR_DECAY_EPOCHS", "must be increasing")
    require(t.LR_SCHEDULE != "cosine" or 0 <= t.COSINE_START_EPOCH < t.EPOCHS, "TRAIN.COSINE_START_EPOCH",
            "must be in [0, EPOCHS)")
    require(0 <= t.LR_FINAL_FACTOR <= 1, "TRAIN.LR_FINAL_FACTOR", "must be in [0, 1]")
    require(t.WARMUP_EPOCHS == 0 or (t.LR_SCHEDULE == "cosine" and 0 < t.WARMUP_EPOCHS < t.EPOCHS),
            "TRAIN.WARMUP_EPOCHS", "needs LR_SCHEDULE=cosine and must be in [0, EPOCHS)")
    require(0 < t.LR_DECAY_FACTOR <= 1, "TRAIN.LR_DECAY_FACTOR", "must be in (0, 1]")
    require(t.WEIGHT_DECAY >= 0, "TRAIN.WEIGHT_DECAY", "must be >= 0")
    require(t.KEEP_CHECKPOINTS >= 1, "TRAIN.KEEP_CHECKPOINTS", "must be >= 1")
    require(t.CHECKPOINT_MINUTES >= 0, "TRAIN.CHECKPOINT_MINUTES", "must be >= 0 (0: at epoch ends only)")
    require(t.SUMMARY_PERIOD >= 1, "TRAIN.SUMMARY_PERIOD", "must be >= 1")
    require(t.VAL_MAX_PEOPLE >= 0, "TRAIN.VAL_MAX_PEOPLE", "must be >= 0")
    require(t.BAD_SAMPLES in ("skip", "stop"), "TRAIN.BAD_SAMPLES", "must be skip or stop")
    cfg.freeze()
    return cfg
