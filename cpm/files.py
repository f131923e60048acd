"""Writing files so that a failure is one line and loses nothing: folders made as ``mkdir -p`` makes them, every
output written under a temporary name and renamed into place when whole (``staged``), and a full disk, a read-only
file system or a missing permission named with the path and the space left."""
import contextlib
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


#: errno values of a write the file system refused, and the words TensorFlow's errors (which carry no errno) use
_REFUSED = {errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied", errno.EPERM:
            "Operation not permitted", errno.EFBIG: "File too large"}


def is_write_refused(error):
    """True if ``error`` says the file system refused a write: full, read-only, no permission, a file too large."""
    return is_disk_full(error) or getattr(error, "errno", None) in _REFUSED or \
        any(words in str(error) for words in _REFUSED.values())


def write_failed(path, error):
    """The one-line UserError of a write of ``path`` that ``error`` refused (is_write_refused), with the space left:
    DiskFull for a full disk."""
    free = f"{_size(free_bytes(path))} free"
    if is_disk_full(error):
        return DiskFull(f"no space left on the device writing {path} ({free})")
    reason = _REFUSED.get(getattr(error, "errno", None)) or next(
        (words for words in _REFUSED.values() if words in str(error)), None) or str(error).splitlines()[0]
    return UserError(f"cannot write {path}: {reason} ({free})")


def free_bytes(path):
    """Bytes free to an unprivileged writer on the file system of ``path`` (its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def disk_full(path):
    """The DiskFull error of a failed write of ``path`` in a training run, which the same command resumes."""
    return DiskFull(f"{write_failed(path, OSError(errno.ENOSPC, 'full'))}; free some space and re-run the same "
                    f"command: the run resumes from its last checkpoint")


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
        raise UserError(f"{what}: cannot create the folder {folder} ({e.strerror}; "
                        f"{_size(free_bytes(folder))} free)") from None
    if not os.access(folder, os.W_OK | os.X_OK):  # an existing folder on a read-only mount, or not ours
        reason = "Read-only file system" if _read_only(folder) else "Permission denied"
        raise UserError(f"{what}: cannot write in the folder {folder} ({reason}; {_size(free_bytes(folder))} free)")


def _read_only(folder):
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


def make_parent(path, what):
    """The folder ``path`` is to be written in, made as make_dirs makes it."""
    make_dirs(os.path.dirname(os.path.abspath(path)), what)


def _partial_name(path):
    """A temporary name beside ``path`` that keeps its extension (OpenCV and numpy choose the format by it)."""
    folder, base = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(base)
    return os.path.join(folder, f".{stem}.partial-{os.getpid()}{ext}")


def _remove(path):
    with contextlib.suppress(OSError):
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)


@contextlib.contextmanager
def staged(path, folder=False):
    """Write a file (or with ``folder`` a whole folder) under a temporary name beside ``path``, yielded, and rename it
    to ``path`` when the block ends: a crash or a full disk never leaves half an output, and an old file at ``path``
    stays as it was until the new one is whole. On any failure the temporary is removed; a write the file system
    refused (full, read-only, no permission: an OSError or TensorFlow's error, not a UserError the block raised)
    becomes one UserError line naming ``path`` and the space left. A ``path`` that is not a regular file (a symlink,
    /dev/stdout, a pipe) is written through, as it is.

    A folder replaces an empty folder at ``path``; a folder at ``path`` that holds files is swapped for the new one,
    which then takes over the files it does not write itself (the user's own beside ours).
    """
    if folder:  # a link to a folder: the folder it names is replaced, the link stays
        path = os.path.realpath(path)
    through = not folder and (os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)))
    tmp = path if through else _partial_name(path) if not folder else _partial_folder(path)
    if not through:
        _remove(tmp)
    try:
        if folder:
            os.makedirs(tmp)
        yield tmp
        if through:
            return
        if not folder:
            if not os.path.isfile(tmp):
                raise UserError(f"cannot write {path}: nothing was written")
            with open(tmp, "rb+") as f:  # on the disk, not in the page cache, before the rename makes it the file
                os.fsync(f.fileno())
            os.replace(tmp, path)
        else:
            _replace_folder(tmp, path)
    except BaseException as e:
        if not through:
            _remove(tmp)  # after a folder's swap the name is free: nothing of the new folder goes
        if not isinstance(e, UserError) and is_write_refused(e) and _ours(e, tmp, path):
            raise write_failed(path, e) from None
        raise


def _ours(error, tmp, path):
    """Whether ``error`` came from writing staged's output: an OSError about the temporary or the output (or naming
    no file), or TensorFlow's error (an OpError carries an error_code; TensorFlow writes only our output here)."""
    if isinstance(error, OSError):
        name = os.path.abspath(str(error.filename)) if error.filename else None
        return name is None or any(name == p or name.startswith(p + os.sep) or name.startswith(p + ".")
                                   for p in (os.path.abspath(tmp), os.path.abspath(path)))
    return hasattr(error, "error_code")


def _partial_folder(path):
    """Where staged builds the folder ``path``: beside it, or inside it where its parent is another file system or
    not ours to write (a mount point given as the output folder)."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if os.path.isdir(path) and (os.path.ismount(path) or not os.access(parent, os.W_OK | os.X_OK)):
        return os.path.join(path, f".partial-{os.getpid()}")
    return f"{path}.partial-{os.getpid()}"


def _replace_folder(new, path):
    """Make folder ``new`` the folder ``path`` (staged's folder case): the old folder is renamed aside, the new one
    into its place (and the old one back if that fails), then the old folder's files that the new one does not hold
    move over and the rest of it goes."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        os.rename(new, path)
        return
    if os.path.dirname(new) == path:  # built inside (a mount point): its files move out one by one
        for name in os.listdir(new):
            _remove(os.path.join(path, name))
            os.rename(os.path.join(new, name), os.path.join(path, name))
        os.rmdir(new)
        return
    old = f"{path}.old-{os.getpid()}"
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    try:
        for name in os.listdir(old):  # files the new folder does not write itself stay
            if not os.path.lexists(os.path.join(path, name)):
                os.rename(os.path.join(old, name), os.path.join(path, name))
    except OSError as e:
        raise UserError(f"{path} is written; the old folder's other files could not join it ({e.strerror}): "
                        f"they are in {old}") from None
    _remove(old)


def write_bytes(path, data):
    """Write ``data`` to ``path`` as ``staged`` writes: whole or not at all, a refused write one line."""
    with staged(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path, obj, indent=None):
    """Write ``obj`` as JSON to ``path`` as ``staged`` writes: a reader, a crash or a full disk never sees half a file
    (on failure the old file stays as it was)."""
    with staged(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
