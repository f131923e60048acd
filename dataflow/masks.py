"""Person masks as small, picklable references that load on demand.

Records carry these instead of pixel arrays: a JHMDB video's puppet masks are megabytes, COCO polygons are a few
numbers, and records are copied into every DataFlow worker. ``load()`` returns uint8 [H, W] in original image px,
1 on the person and 0 elsewhere.

COCO polygons and run-length encodings go through pycocotools, COCO's own implementation, so our masks are the
pixels COCO's tools and metrics use.
"""
import functools
from dataclasses import dataclass

import numpy as np
import pycocotools.mask as coco_mask

from cpm.errors import UserError
from dataflow.records import load_mat, with_frames


@dataclass(frozen=True)
class PolygonMask:
    """COCO polygons: a tuple of flat (x0, y0, x1, y1, ...) lists in px, on an image of ``height`` x ``width``."""

    polygons: tuple
    height: int
    width: int

    def load(self):
        rles = coco_mask.frPyObjects([list(p) for p in self.polygons], self.height, self.width)
        return coco_mask.decode(coco_mask.merge(rles)).astype(np.uint8)

    def to_rle(self):
        rle = coco_mask.merge(coco_mask.frPyObjects([list(p) for p in self.polygons], self.height, self.width))
        return RLEMask(rle["counts"].decode("ascii"), self.height, self.width)


@dataclass(frozen=True)
class RLEMask:
    """A COCO run-length encoding: ``counts`` as COCO's compressed string, or a tuple of run lengths (uncompressed,
    column-major, starting with a run of zeros)."""

    counts: object
    height: int
    width: int

    def load(self):
        rle = {"size": [self.height, self.width], "counts": self.counts}
        if isinstance(self.counts, (list, tuple)):
            rle = coco_mask.frPyObjects(rle, self.height, self.width)
        else:
            rle["counts"] = self.counts.encode("ascii")
        return coco_mask.decode(rle).astype(np.uint8)

    def area(self):
        """Pixels on the person, counted from the encoding (no decoding)."""
        rle = self.to_rle()
        return float(coco_mask.area({"size": [rle.height, rle.width], "counts": rle.counts.encode("ascii")}))

    def to_rle(self):
        if isinstance(self.counts, str):
            return self
        return encode_mask(self.load())


@dataclass(frozen=True)
class MatFrameMask:
    """Frame ``frame`` (0-based) of an H x W x T mask array ``variable`` in a MATLAB file (JHMDB's puppet_mask.mat
    holds ``part_mask``)."""

    path: str
    variable: str
    frame: int

    def load(self):
        masks = _mat_masks(self.path, self.variable)
        if not 0 <= self.frame < masks.shape[2]:
            raise UserError(f"{self.path}: {self.variable} has {masks.shape[2]} frames, no frame {self.frame + 1}")
        return (masks[:, :, self.frame] != 0).astype(np.uint8)

    def to_rle(self):
        return encode_mask(self.load())


def encode_mask(mask):
    """RLEMask (compressed string) of a uint8/bool [H, W] mask."""
    mask = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    rle = coco_mask.encode(mask)
    return RLEMask(rle["counts"].decode("ascii"), int(mask.shape[0]), int(mask.shape[1]))


# A worker cuts crops from a few videos at a time; keeping their mask arrays avoids re-reading a whole .mat per frame.
@functools.lru_cache(maxsize=4)
def _mat_masks(path, variable):
    masks = with_frames(load_mat(path, [variable])[variable])
    if masks.ndim != 3:
        raise UserError(f"{path}: {variable} has shape {masks.shape}; expected H x W x T")
    return masks
