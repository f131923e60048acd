"""Writing files so that a failure is one line and loses nothing: folders made as ``mkdir -p`` makes them, JSON
replaced atomically, and a full disk named with the path and the space left."""
import errno
import json
import os
import shutil

from cpm.errors import UserError


class DiskFull(UserError):
    """A write failed for lack of space (ENOSPC). What was on disk before the write is intact."""


def is_disk_full(error):
    """True if ``error`` (an OSError, or TensorFlow's or tensorpack's wrapping of one) says the disk is full."""
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(error)


def free_bytes(path):
    """Bytes free to an unprivileged writer on the file system of ``path`` (its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def disk_full(path):
    """The DiskFull error of a failed write of ``path``."""
    return DiskFull(f"no space left on the device writing {path} ({_size(free_bytes(path))} free); free some space "
                    f"and re-run the same command: the run resumes from its last checkpoint")


def _size(n):
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


def make_dirs(folder, what):
    """``mkdir -p folder``; where that fails (no permission, a file in the way, a full disk), a UserError naming
    ``what`` (e.g. ``--out-json x/y.json``) and the folder."""
    if not folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(folder) from None
        raise UserError(f"{what}: cannot create the folder {folder} ({e.strerror})") from None


def make_parent(path, what):
    """The folder ``path`` is to be written in, made as make_dirs makes it."""
    make_dirs(os.path.dirname(os.path.abspath(path)), what)


def write_json(path, obj, indent=None):
    """Write ``obj`` as JSON to ``path`` atomically: a temporary file beside it, flushed to disk, then renamed
    over it, so a reader, a crash or a full disk never sees half a file (on failure the old file stays as it was)."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if is_disk_full(e):
            raise disk_full(path) from None
        raise UserError(f"cannot write {path}: {e.strerror}") from None
