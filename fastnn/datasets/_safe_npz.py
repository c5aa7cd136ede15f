"""Read a numpy `.npz` archive without `allow_pickle`: numeric members through numpy's own reader with
pickles refused, object-dtype members (numpy pickles those: the ragged IMDB and Reuters sequences)
through fastnn's data-only pickle reader (`_safe_pickle.loads(..., object_arrays=True)`), which builds
lists, numbers, strings and numeric arrays and never imports or calls anything a file names.

Work and memory are bounded: a member may hold at most `MAX_MEMBER_BYTES` once decompressed (a
larger one, or a zip bomb, is refused before it is read in full), and the pickle reader's work is
linear in its input.
"""
import ast
import io
import zipfile

import numpy as np

from fastnn.datasets import _safe_pickle

__all__ = ["load_npz", "read_npy", "MAX_MEMBER_BYTES"]

MAX_MEMBER_BYTES = 256 << 20  # IMDB's largest member is about 20 MB
_MAGIC = b"\x93NUMPY"


def read_npy(data, source="npy"):
    """The array in the `.npy` bytes `data` (a ValueError naming `source` if it is not one this reads)."""
    if data[:6] != _MAGIC or len(data) < 10:
        raise ValueError(f"{source} is not a .npy file (bad magic bytes)")
    major = data[6]
    if major == 1:
        size, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        size, start = int.from_bytes(data[8:12], "little"), 12
    else:
        raise ValueError(f"{source}: .npy format version {major} is not supported")
    if start + size > len(data) or size > 1 << 16:
        raise ValueError(f"{source}: truncated or oversized .npy header")
    try:  # the header is a Python literal dict; literal_eval evaluates no code
        header = ast.literal_eval(data[start:start + size].decode("latin1" if major < 3 else "utf-8"))
        descr, fortran, shape = header["descr"], header["fortran_order"], tuple(header["shape"])
        dtype = np.lib.format.descr_to_dtype(descr)
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(f"{source}: malformed .npy header ({type(e).__name__}: {e})") from None
    if not dtype.hasobject:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    if dtype != object:
        raise ValueError(f"{source}: dtype {dtype} (objects inside a structured dtype) is refused")
    arr = _safe_pickle.loads(memoryview(data)[start + size:], object_arrays=True)
    if not isinstance(arr, np.ndarray) or arr.dtype != object or arr.shape != shape:
        raise ValueError(f"{source}: the pickled array does not match its header (shape {shape}, object dtype)")
    return np.asfortranarray(arr) if fortran else arr


def load_npz(path):
    """A dict {member name without '.npy': array} of the `.npz` file at `path`."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                source = f"{path}:{info.filename}"
                if info.file_size > MAX_MEMBER_BYTES:
                    raise ValueError(f"{source} is {info.file_size} bytes once decompressed; at most "
                                     f"{MAX_MEMBER_BYTES} are read")
                with archive.open(info) as f:
                    data = f.read(MAX_MEMBER_BYTES + 1)  # (the size in the zip directory may lie)
                if len(data) > MAX_MEMBER_BYTES:
                    raise ValueError(f"{source} is larger than {MAX_MEMBER_BYTES} bytes once decompressed")
                arrays[info.filename[:-4]] = read_npy(data, source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npz (zip) file: {e}") from None
    return arrays
