"""Training targets: Gaussian belief maps (encode and decode in one object), skeleton-derived part labels, the
centre map and joint weights."""
import cv2
import numpy as np

from cpm.joints import UNANNOTATED

#: Map values whose exponent exceeds this are set to 0: exp(-4.6052) = 1 %, the reference release's cut-off.
GAUSSIAN_CUTOFF = 4.6052


class BeliefCodec:
    """Encodes joints as belief maps and decodes maps back to joints, with one grid convention for both.

    Cell g of the map covers input px [stride * g, stride * (g + 1)); its value is the Gaussian evaluated at the
    cell's centre ``stride * g + (stride - 1) / 2`` (3.5 + 8 g for CPM), as the reference release does.

    Args:
        input_size: px, side of the network input.
        stride: px per cell.
        sigmas: float [K] px of input, one Gaussian sigma per joint.
    """

    def __init__(self, input_size, stride, sigmas):
        self.input_size = int(input_size)
        self.stride = int(stride)
        self.map_size = self.input_size // self.stride
        self.sigmas = np.asarray(sigmas, dtype=np.float64)
        self.grid = self.stride * np.arange(self.map_size) + (self.stride - 1) / 2.0  # px of input

    @property
    def num_joints(self):
        return len(self.sigmas)

    def encode(self, joints):
        """Belief maps of one or more people.

        Args:
            joints: float [K, 3] or [P, K, 3] in input px; unannotated joints and joints outside the input get no
                peak. Several people combine by a max, clamped to 1.
        Returns:
            float32 [H, W, K + 1]; the last channel is the background, max(1 - max over joints, 0).
        """
        joints = np.asarray(joints, dtype=np.float64).reshape(-1, self.num_joints, 3)  # P x K x 3
        x, y, vis = joints[..., 0], joints[..., 1], joints[..., 2]
        inside = (vis != UNANNOTATED) & (x >= 0) & (y >= 0) & (x < self.input_size) & (y < self.input_size)
        two_sigma_sq = 2.0 * self.sigmas ** 2  # K
        # Separable Gaussian: exponent(y, x) = ey[y] + ex[x].
        ex = (self.grid[None, None, :] - x[..., None]) ** 2 / two_sigma_sq[:, None]  # P x K x W
        ey = (self.grid[None, None, :] - y[..., None]) ** 2 / two_sigma_sq[:, None]  # P x K x H
        exponent = ey[..., :, None] + ex[..., None, :]  # P x K x H x W
        maps = np.where(exponent > GAUSSIAN_CUTOFF, 0.0, np.exp(-exponent))
        maps *= inside[..., None, None]
        maps = np.minimum(maps.max(axis=0), 1.0)  # K x H x W
        background = np.maximum(1.0 - maps.max(axis=0, initial=0.0), 0.0)
        return np.concatenate([maps, background[None]], axis=0).transpose(1, 2, 0).astype(np.float32)

    def decode(self, beliefs):
        """Joint positions from belief maps: the arg-max cell, moved a quarter cell towards its higher neighbour.

        Args:
            beliefs: float [H, W, C] with C >= K; channels past K (background) are ignored.
        Returns:
            float32 [K, 3]: x, y in input px and the peak value as a score.
        """
        maps = np.asarray(beliefs, dtype=np.float32)[:, :, :self.num_joints].transpose(2, 0, 1)  # K x H x W
        k, h, w = maps.shape
        flat = maps.reshape(k, -1).argmax(axis=1)
        gy, gx = np.divmod(flat, w)
        rows = np.arange(k)
        score = maps[rows, gy, gx]
        # The quarter-cell step towards the larger neighbour halves the expected quantisation error.
        dx = np.sign(maps[rows, gy, np.minimum(gx + 1, w - 1)] - maps[rows, gy, np.maximum(gx - 1, 0)])
        dy = np.sign(maps[rows, np.minimum(gy + 1, h - 1), gx] - maps[rows, np.maximum(gy - 1, 0), gx])
        x = self.grid[gx] + 0.25 * self.stride * dx
        y = self.grid[gy] + 0.25 * self.stride * dy
        return np.stack([x, y, score], axis=1).astype(np.float32)

    def upsample(self, beliefs, interpolation=cv2.INTER_CUBIC):
        """Belief maps [H, W, C] resized to input px [S, S, C].

        Resizing by ``stride`` puts cell g's value at px stride * g + (stride - 1) / 2, the encoding grid, so the
        upsampled maps live in crop px. Bicubic, as the CMU demos of the reference release do: a bilinear map peaks
        on a cell centre, so its arg-max would throw away everything finer than a cell (8 px of a 184 px crop).
        Other maps (part probabilities) may ask for another ``interpolation`` (a cv2 flag).
        """
        dense = cv2.resize(np.ascontiguousarray(beliefs), (self.input_size, self.input_size),
                           interpolation=interpolation)  # all channels in one call
        return dense.reshape(self.input_size, self.input_size, beliefs.shape[2])

    def decode_dense(self, maps):
        """Joints from input-resolution maps [S, S, C >= K] (e.g. upsample's output): the arg-max pixel.

        Returns:
            float32 [K, 3]: x, y in input px and the peak value.
        """
        maps = np.asarray(maps)[:, :, :self.num_joints]
        flat = maps.reshape(-1, self.num_joints).argmax(axis=0)
        y, x = np.divmod(flat, maps.shape[1])
        return np.stack([x, y, maps[y, x, np.arange(self.num_joints)]], axis=1).astype(np.float32)


def center_map(center, input_size, stride, sigma):
    """The centre map: a Gaussian at the person centre over the input, average-pooled by ``stride``.

    The Gaussian is separable, so pooling each axis's 1-D profile gives exactly the pooled 2-D map.

    Args:
        center: [2] x, y in input px.
    Returns:
        float32 [input_size // stride, input_size // stride, 1].
    """
    px = np.arange(input_size, dtype=np.float64)
    n = input_size // stride
    gx = np.exp(-(px - center[0]) ** 2 / (2.0 * sigma ** 2)).reshape(n, stride).mean(axis=1)
    gy = np.exp(-(px - center[1]) ** 2 / (2.0 * sigma ** 2)).reshape(n, stride).mean(axis=1)
    return np.outer(gy, gx)[:, :, None].astype(np.float32)


def joint_weights(joints):
    """Loss weight per belief channel: 0 for unannotated joints, 1 otherwise and for the background.

    Args:
        joints: [K, 3].
    Returns:
        float32 [K + 1].
    """
    w = (np.asarray(joints)[:, 2] != UNANNOTATED).astype(np.float32)
    return np.append(w, np.float32(1.0))


class PartCodec:
    """Skeleton-derived part labels on a pixel grid (cpm.parts explains the scheme).

    The grid is either the belief-map cells (training targets, cell centres 3.5 + 8 g as BeliefCodec) or every crop
    pixel (evaluation), so one rule makes both. Distances are measured in units of each bone's radius: a pixel is on
    the person if it lies within some capsule (or inside the torso polygon), and belongs to the part whose bone is
    nearest in those units; with a person mask, the mask decides what is person and the same rule assigns parts.

    Args:
        parts: the scheme's exclusive parts (cpm.parts.Part, joints as the keypoint spec's indices).
        grid: float [N] px coordinates of the grid's rows and columns (the grid is square).
        width: multiplier of every bone radius (DATA.PART_WIDTH).
    """

    def __init__(self, parts, grid, width=1.0):
        self.parts = tuple(parts)
        self.grid = np.asarray(grid, dtype=np.float64)
        self.width = float(width)
        self.needed = np.array(sorted({j for p in self.parts for j in p.joints}))

    @property
    def num_parts(self):
        return len(self.parts)

    def complete(self, joints):
        """Whether every joint the parts are drawn from is annotated: otherwise a part's place is unknown."""
        return bool((np.asarray(joints)[self.needed, 2] != UNANNOTATED).all())

    def distances(self, joints, person_size, everywhere=False):
        """float32 [P, N, N]: each part's distance field in units of its bones' radii (0 inside its polygon); unless
        ``everywhere``, inf where no bone's capsule can reach (beyond the joints' box grown by the largest radius:
        computed only inside it, which keeps drawing parts around predicted joints cheaper than a learned part
        stage)."""
        joints = np.asarray(joints, dtype=np.float64)
        n = len(self.grid)
        out = np.full((self.num_parts, n, n), np.inf, dtype=np.float32)
        reach = np.inf if everywhere else \
            max((r for p in self.parts for _, _, r in p.bones), default=0.0) * self.width * person_size
        xy = joints[self.needed, :2]
        rows = np.flatnonzero((self.grid >= xy[:, 1].min() - reach) & (self.grid <= xy[:, 1].max() + reach))
        cols = np.flatnonzero((self.grid >= xy[:, 0].min() - reach) & (self.grid <= xy[:, 0].max() + reach))
        if not len(rows) or not len(cols):
            return out
        window = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        gx = self.grid[cols[0]:cols[-1] + 1][None, :].astype(np.float32)
        gy = self.grid[rows[0]:rows[-1] + 1][:, None].astype(np.float32)
        for k, part in enumerate(self.parts):
            d2 = np.full((len(gy), gx.shape[1]), np.inf, np.float32)
            for a, b, radius in part.bones:  # squared distances in radii; one square root per part
                d2 = np.minimum(d2, _segment_distance_sq(gx, gy, joints[a, :2], joints[b, :2])
                                / np.float32(radius * self.width * person_size) ** 2)
            d = np.sqrt(d2)
            if part.polygon:
                d[_polygon_mask(joints[list(part.polygon), :2], self.grid)[window]] = 0.0
            out[k][window] = d
        return out

    def encode(self, joints, person_size, mask=None):
        """Part labels of one person.

        Args:
            joints: float [K, 3] in the grid's px (crop px); should be complete().
            person_size: px of the same frame, SCALE_UNIT_PX x scale x the crop's zoom.
            mask: None, or uint8 [N, N] person mask sampled on the grid.
        Returns:
            uint8 [N, N]: 0 background, k + 1 for part k.
        """
        d = self.distances(joints, person_size, everywhere=mask is not None)  # a mask may reach past the capsules
        nearest = d.argmin(axis=0)
        person = d.min(axis=0) <= 1.0 if mask is None else np.asarray(mask) != 0
        return np.where(person, nearest + 1, 0).astype(np.uint8)


def _segment_distance_sq(gx, gy, a, b):
    """Squared distance of grid points (broadcast gx [1, W], gy [H, 1], float32) from the segment a-b."""
    a, ab = np.asarray(a, np.float32), np.asarray(b, np.float32) - np.asarray(a, np.float32)
    length_sq = float(ab @ ab)
    t = np.float32(0.0) if length_sq == 0 else np.clip(((gx - a[0]) * ab[0] + (gy - a[1]) * ab[1]) / length_sq, 0, 1)
    dx, dy = gx - (a[0] + t * ab[0]), gy - (a[1] + t * ab[1])
    return dx * dx + dy * dy


def _polygon_mask(points, grid):
    """bool [N, N]: grid points inside a polygon given in px (filled in grid-index space, 1/16 px precision)."""
    step = grid[1] - grid[0] if len(grid) > 1 else 1.0
    idx = np.round((points - grid[0]) / step * 16).astype(np.int32)
    canvas = np.zeros((len(grid), len(grid)), np.uint8)
    cv2.fillPoly(canvas, [idx], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)
