"""Download-and-cache helper shared by the dataset loaders.

Files live in the cache folder `~/.fastnn/datasets` (`$FASTNN_HOME/datasets` when FASTNN_HOME is
set). A file is fetched only when it is missing from the cache or its sha256 does not match; a
download goes to a temporary file in the destination folder, is hash-checked, and only then renamed
into place (atomic on POSIX and Windows), so an interrupted or corrupted transfer never leaves a
file that a later run would trust.
"""
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request

__all__ = ["DatasetUnavailableError", "cache_dir", "get_file", "sha256_of"]

_CHUNK = 1 << 20
_TIMEOUT_S = 60


class DatasetUnavailableError(OSError):
    """A dataset file is neither cached nor downloadable; the message says where to put it."""


def cache_dir():
    """The datasets cache folder: `$FASTNN_HOME/datasets`, else `~/.fastnn/datasets`."""
    home = os.environ.get("FASTNN_HOME") or os.path.join(os.path.expanduser("~"), ".fastnn")
    return os.path.join(home, "datasets")


def _algorithm(file_hash):
    """Keras's rule (`hash_algorithm="auto"`): a 64-digit hash is a sha256, anything else an md5."""
    return "sha256" if len(file_hash) == 64 else "md5"


def sha256_of(path, algorithm="sha256"):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _urlopen(url):
    """Open `url` for reading (tests replace this function; they never touch the network)."""
    return urllib.request.urlopen(url, timeout=_TIMEOUT_S)


def get_file(fname, origin, file_hash, cache_subdir=""):
    """Path of the verified local copy of `origin`, downloading it if needed.

    `fname`: file name, relative to `cache_dir()/cache_subdir` (an absolute path is used as is).
    `file_hash`: the expected sha256 (hex; an md5 when it has 32 digits, as Keras pins some files). Raises ValueError when a download does not match it,
    DatasetUnavailableError when the file cannot be obtained.
    """
    fname = os.path.expanduser(os.fspath(fname))
    path = fname if os.path.isabs(fname) else os.path.join(cache_dir(), cache_subdir, fname)
    stale, algorithm = "", _algorithm(file_hash)
    if os.path.isfile(path):
        got = sha256_of(path, algorithm)
        if got == file_hash:
            return path
        stale = f" (the file there now has {algorithm} {got}: it is corrupted or a different file)"
        print(f"fastnn: {path} has {algorithm} {got}, expected {file_hash}; downloading it again.",
              file=sys.stderr)
    hint = f"To use it offline, download {origin} yourself and save it as\n    {path}\n({algorithm} {file_hash}){stale}"
    if not os.path.isabs(fname):
        hint += f", or set FASTNN_HOME to a folder that holds {os.path.join('datasets', cache_subdir, fname)}"
    hint += "."
    download_to(origin, path, hint, DatasetUnavailableError, "dataset", algorithm, file_hash)
    return path


def download_to(origin, path, hint, error, what, algorithm=None, file_hash=None):
    """Download ``origin`` to ``path`` through a temporary file in its folder, renamed into place only when
    complete (and, with ``file_hash``, when its ``algorithm`` digest matches; else ValueError and nothing is
    saved). A folder that cannot be made or a failed transfer raise ``error`` with ``hint`` (``what``: the
    cache's name in the message)."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise error(f"Cannot create the {what} cache folder {folder}: {e}.\n{hint}") from None
    print(f"Downloading data from {origin}", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    try:
        h = hashlib.new(algorithm) if file_hash is not None else None
        try:
            with os.fdopen(fd, "wb") as out, _urlopen(origin) as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    if h is not None:
                        h.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise error(f"Cannot download {origin}: {reason}.\n{hint}") from None
        if h is not None and h.hexdigest() != file_hash:
            raise ValueError(f"The file downloaded from {origin} has {algorithm} {h.hexdigest()}, expected "
                             f"{file_hash}: it is corrupted or has changed; nothing was saved. {hint}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
