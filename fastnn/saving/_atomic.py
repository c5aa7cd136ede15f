"""Atomic file writes: the data goes to ``.NAME.<pid>.<random>.tmp`` next to the target, is fsynced, then renamed
over the target, so a failed or killed save leaves the previous file whole. A save killed by SIGKILL cannot remove
its temporary file: the next successful save of the same NAME removes those whose process is gone."""
import glob
import os
import tempfile


def atomic_write(filepath, write, overwrite=True):
    """Call ``write(fileobj)`` on a temporary file next to ``filepath``, then rename it into place."""
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    folder = os.path.dirname(os.path.abspath(filepath))
    prefix = f".{os.path.basename(filepath)}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _remove_orphans(folder, os.path.basename(filepath))


def _remove_orphans(folder, name):
    """Remove ``.NAME.<pid>.*.tmp`` files left by saves whose process no longer runs (killed mid-save). A live
    process's temporary file (a concurrent save) is left alone."""
    for path in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
        pid = os.path.basename(path)[len(name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            os.unlink(path)
        except OSError:
            pass


def _alive(pid):
    if pid == os.getpid() or os.name == "nt":  # NOTE: Windows's os.kill(pid, 0) would terminate the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists (another user's) or unknowable: keep its file
    return True
