"""Reading image files: any geometry and encoding as uint8 BGR, refused from the header when too large, and the
numeric id in an image's file name (COCO results).

No TensorFlow here: prediction reads its photos through this module without importing the training pipeline.
"""
import io
import os
import re
import warnings

import cv2
import numpy as np
import PIL.Image

from cpm.errors import BadSample
from dataflow.tfrecord import read_image_bytes

# Largest image decoded, checked from its header before decoding: 50 MP is 150 MB as BGR, so a request stays well
# under 2 GB with its copies, while phone photos (12-48 MP) pass.
MAX_PIXELS = 50_000_000

def read_image(image):
    """Read a record's image (a path, or an image inside a container such as a TFRecordImage) as uint8 HxWx3 BGR.

    Greyscale, 16-bit and RGBA images become 8-bit BGR, CMYK JPEGs BGR, and EXIF orientation is applied (OpenCV's
    IMREAD_COLOR), so px are those of the image as seen. Raises BadSample naming the image if it is missing, empty,
    larger than MAX_PIXELS (refused from its header, before decoding), a JPEG cut short (OpenCV would decode the part
    that is there and grey out the rest) or not a decodable image. Any geometry is read (1x1, 3x3000): prediction
    handles it, training refuses images under MIN_IMAGE_SIDE (CropMapper).
    """
    data = read_image_bytes(image)
    if not data:
        raise BadSample(f"{image}: empty file")
    size = _header_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise BadSample(f"{image}: {size[0]}x{size[1]} px is above the {MAX_PIXELS // 10**6} MP limit")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        raise BadSample(f"{image}: truncated JPEG (no end-of-image marker)")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise BadSample(f"{image}: not a decodable image")
    return decoded


def _header_size(data):
    """(width, height) from an encoded image's header without decoding it (Pillow reads headers lazily); None if
    Pillow does not know the format (OpenCV then decides)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
        previous, PIL.Image.MAX_IMAGE_PIXELS = PIL.Image.MAX_IMAGE_PIXELS, None  # our own limit applies instead
        try:
            with PIL.Image.open(io.BytesIO(data)) as im:
                return im.size
        except (PIL.UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return None
        finally:
            PIL.Image.MAX_IMAGE_PIXELS = previous


def image_id(image, fallback):
    """The integer in an image's file name (its last run of digits), or ``fallback + 1``."""
    digits = re.findall(r"\d+", os.path.splitext(os.path.basename(str(image)))[0])
    return int(digits[-1]) if digits else fallback + 1
