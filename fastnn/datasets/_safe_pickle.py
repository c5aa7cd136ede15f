"""A pickle reader that builds data, never runs code: enough of the pickle protocol (2 to 4) to read
the CIFAR batch files (a dict of byte strings, lists of ints and numpy arrays) and nothing more.

Python's `pickle.load` calls whatever `module.name` a file names (`os.system` included), so a
downloaded or planted file could run code. This reader interprets the opcodes itself and knows
only these globals, each replaced by a local constructor that builds plain data:

    numpy.core.multiarray._reconstruct + numpy.ndarray   -> an array rebuilt from its raw bytes
    (numpy._core.multiarray under numpy 2)                   (numeric/bool dtypes only, no objects)
    numpy.dtype                                           -> a dtype from a code such as 'u1', '<f4'
    _codecs.encode(text, 'latin1')                        -> bytes (how Python 3 writes bytes in protocol 2)
    builtins.bytes() / __builtin__.bytes()                -> b''

Any other global, an unknown opcode, an object-dtype array, a truncated or malformed stream raises
`UnsafePickleError` (a ValueError). `loads(data, object_arrays=True)` also accepts object-dtype arrays
(numpy's way of saving ragged data, e.g. the IMDB and Reuters .npz files): their items are whatever this
reader builds (lists, numbers, strings, bytes, numeric arrays), never arbitrary objects. Python 2 `str` values (CIFAR's keys) come back as bytes, as
`pickle.load(f, encoding="bytes")` would return them.
"""
import itertools
import math
import re
import struct

import numpy as np

__all__ = ["UnsafePickleError", "loads"]


class UnsafePickleError(ValueError):
    """The stream is not a pickle this reader accepts (unknown global or opcode, or malformed)."""


class _Global:
    """A whitelisted global: a name only; REDUCE dispatches on it."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<global {self.name}>"


_RECONSTRUCT, _NDARRAY, _DTYPE, _ENCODE, _BYTES = (
    _Global(n) for n in ("ndarray._reconstruct", "ndarray", "dtype", "_codecs.encode", "bytes"))
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTYPE,
    ("_codecs", "encode"): _ENCODE,
    ("__builtin__", "bytes"): _BYTES,
    ("builtins", "bytes"): _BYTES,
}
# Plain numeric dtype codes: bool, signed/unsigned ints and floats of the usual sizes.
_DTYPE_CODE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248])")


class _ArrayStub:
    """Result of `_reconstruct(ndarray, (0,), b'b')`: becomes an array when BUILD gives its state."""


class _DtypeStub:
    def __init__(self, code):
        self.code = code


def _text(v):
    return v.decode("latin1") if isinstance(v, bytes) else v


def _reduce(func, args, object_arrays=False):
    if not isinstance(args, tuple):
        raise UnsafePickleError("REDUCE arguments are not a tuple")
    if func is _RECONSTRUCT:
        if len(args) != 3 or args[0] is not _NDARRAY:
            raise UnsafePickleError("_reconstruct is only accepted for numpy.ndarray")
        return _ArrayStub()
    if func is _DTYPE:
        code = _text(args[0]) if args else None
        if object_arrays and code in ("O8", "O4", "|O"):
            return _DtypeStub("O")
        if not isinstance(code, str) or not _DTYPE_CODE.fullmatch(code):
            raise UnsafePickleError(f"dtype {code!r} refused (only bool, int, uint and float dtypes)")
        return _DtypeStub(code)
    if func is _ENCODE:
        if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
            raise UnsafePickleError("_codecs.encode is only accepted as encode(text, 'latin1')")
        return args[0].encode("latin1")
    if func is _BYTES:
        if args:
            raise UnsafePickleError("bytes(...) is only accepted with no arguments")
        return b""
    raise UnsafePickleError(f"REDUCE on {func!r} refused")


def _build(obj, state, object_arrays=False):
    if isinstance(obj, _DtypeStub):
        # numpy's dtype state: (version, endian, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise UnsafePickleError("only plain dtypes are accepted (no subarrays or fields)")
        endian = _text(state[1])
        if obj.code == "O":  # (object_arrays only)
            return np.dtype(object)
        code = obj.code.lstrip("<>|=")
        return np.dtype((endian if endian in ("<", ">") else "") + code)
    if isinstance(obj, _ArrayStub):
        # ndarray state: (version, shape, dtype, is_fortran, raw bytes)
        if not isinstance(state, tuple) or len(state) != 5:
            raise UnsafePickleError("malformed ndarray state")
        _, shape, dtype, fortran, raw = state
        if object_arrays and dtype == object:
            return _object_array(shape, fortran, raw)
        if not isinstance(dtype, np.dtype) or not isinstance(raw, bytes):
            raise UnsafePickleError("ndarray state needs a plain dtype and raw bytes")
        if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise UnsafePickleError(f"malformed ndarray shape {shape!r}")
        count = math.prod(shape)
        if count * dtype.itemsize != len(raw):
            raise UnsafePickleError(f"ndarray of shape {shape} {dtype} needs {count * dtype.itemsize} bytes, "
                                    f"got {len(raw)}")
        flat = np.frombuffer(raw, dtype=dtype)
        arr = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
        return np.array(arr, dtype=dtype.newbyteorder("="), order="C")
    raise UnsafePickleError(f"BUILD on {type(obj).__name__} refused")


def _object_array(shape, fortran, items):
    """An object array of `shape` from the list of its items (numpy pickles object arrays so)."""
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise UnsafePickleError(f"malformed ndarray shape {shape!r}")
    if not isinstance(items, list) or len(items) != math.prod(shape):
        raise UnsafePickleError(f"object ndarray of shape {shape} needs a list of {math.prod(shape)} items")
    flat = np.empty(len(items), dtype=object)
    flat[:] = items  # (slice assignment: items that are lists stay items, numpy does not broadcast them)
    return flat.reshape(shape[::-1]).T.copy() if fortran else flat.reshape(shape)


_LEAVES = {int, float, bool, str, bytes, type(None)}


def _check_built(obj):
    """Every stub must have been completed by BUILD."""
    if isinstance(obj, (_ArrayStub, _DtypeStub, _Global)):
        raise UnsafePickleError(f"incomplete object {obj!r} in the pickle")
    if isinstance(obj, (list, tuple)) or (isinstance(obj, np.ndarray) and obj.dtype == object):
        items = obj.ravel().tolist() if isinstance(obj, np.ndarray) else obj
        if set(map(type, items)) <= _LEAVES:  # (one C-level pass over the ragged datasets' millions of ints)
            return
        for v in items:
            _check_built(v)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_built(k)
            _check_built(v)


# A run of BININT1 (K + 1 byte), BININT2 (M + 2 bytes) and BININT (J + 4 bytes) opcodes: the opcode byte
# alone decides each token's length, so the regexes tokenize exactly as the opcode loop would.
_INT_RUN = re.compile(rb"(?:K.|M..|J....)*", re.S)
_INT_TOKEN = re.compile(rb"(K.|M..|J....)", re.S)


def _int_run(data, pos, stack):
    """Push the ints of the run of int opcodes at `pos` (what follows the MARK of a list of ints) onto
    `stack`; returns the position after it. Decoded with C-level loops (a regex split, int.from_bytes)
    instead of one opcode at a time: the ragged datasets hold millions of ints."""
    end = _INT_RUN.match(data, pos).end()
    if end - pos < 16:  # short runs: the opcode loop is as fast
        return pos
    tokens = _INT_TOKEN.split(bytes(data[pos:end]))[1::2]          # b"K\x05", b"M\x2c\x01", ...
    # a token read little-endian is opcode + 256 * value: value = v >> 8; only BININT (J) is signed, and
    # only it reaches 2**31 (K and M hold at most 2**16 - 1)
    values = np.fromiter(map(int.from_bytes, tokens, itertools.repeat("little")), np.int64, len(tokens)) >> 8
    if values.max() >= 1 << 31:
        values[values >= 1 << 31] -= 1 << 32
    stack.extend(values.tolist())
    return end


class _Reader:
    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise UnsafePickleError("truncated pickle")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return bytes(b)

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def line(self):
        end = bytes(self.data[self.pos:self.pos + 256]).find(b"\n")
        if end < 0:
            raise UnsafePickleError("malformed GLOBAL opcode")
        return self.take(end + 1)[:-1].decode("ascii", "strict")


def loads(data, object_arrays=False):
    """Read one pickle from the bytes `data`; see the module docstring for what is accepted."""
    try:
        return _loads(data, object_arrays)
    except UnsafePickleError:
        raise
    except (IndexError, KeyError, TypeError, ValueError, UnicodeDecodeError, struct.error, RecursionError) as e:
        raise UnsafePickleError(f"malformed pickle: {type(e).__name__}: {e}") from None


def _loads(data, object_arrays=False):
    r = _Reader(data)
    stack, marks, memo = [], [], {}

    def target(kind):
        """The container under construction for APPEND(S)/SETITEM(S): only lists and dicts."""
        if not stack or type(stack[-1]) is not kind:
            raise UnsafePickleError(f"malformed pickle: {kind.__name__} expected below an item opcode")
        return stack[-1]

    def pop_mark():
        m = marks.pop()
        items = stack[m:]
        del stack[m:]
        return items

    def global_(module, name):
        g = _GLOBALS.get((module, name))
        if g is None:
            raise UnsafePickleError(f"refusing to load global {module}.{name} (this reader loads arrays only)")
        stack.append(g)

    while True:
        op = r.take(1)
        if op == b"\x80":                                   # PROTO
            proto = r.take(1)[0]
            if not 2 <= proto <= 4:
                raise UnsafePickleError(f"pickle protocol {proto} is not supported (2 to 4 are)")
        elif op == b"\x95":                                 # FRAME: a length hint only
            r.take(8)
        elif op == b".":                                    # STOP
            if len(stack) != 1 or marks:
                raise UnsafePickleError("malformed pickle: unbalanced stack at STOP")
            _check_built(stack[0])
            return stack[0]
        elif op == b"(":                                    # MARK
            marks.append(len(stack))
            r.pos = _int_run(r.data, r.pos, stack)
        elif op == b"}":
            stack.append({})
        elif op == b"]":
            stack.append([])
        elif op == b")":
            stack.append(())
        elif op == b"d":                                    # DICT
            items = pop_mark()
            stack.append(dict(zip(items[::2], items[1::2])))
        elif op == b"l":                                    # LIST
            stack.append(pop_mark())
        elif op == b"t":                                    # TUPLE
            stack.append(tuple(pop_mark()))
        elif op in (b"\x85", b"\x86", b"\x87"):              # TUPLE1..3
            n = op[0] - 0x84
            if len(stack) < n:
                raise UnsafePickleError("malformed pickle: stack underflow")
            items = tuple(stack[len(stack) - n:])
            del stack[len(stack) - n:]
            stack.append(items)
        elif op == b"a":                                    # APPEND
            v = stack.pop()
            target(list).append(v)
        elif op == b"e":                                    # APPENDS
            items = pop_mark()
            target(list).extend(items)
        elif op == b"s":                                    # SETITEM
            v = stack.pop()
            k = stack.pop()
            target(dict)[k] = v
        elif op == b"u":                                    # SETITEMS
            items = pop_mark()
            target(dict).update(zip(items[::2], items[1::2]))
        elif op == b"q":                                    # BINPUT
            memo[r.take(1)[0]] = stack[-1]
        elif op == b"r":                                    # LONG_BINPUT
            memo[r.unpack("<I")] = stack[-1]
        elif op == b"\x94":                                 # MEMOIZE
            memo[len(memo)] = stack[-1]
        elif op == b"h":                                    # BINGET
            stack.append(memo[r.take(1)[0]])
        elif op == b"j":                                    # LONG_BINGET
            stack.append(memo[r.unpack("<I")])
        elif op == b"N":
            stack.append(None)
        elif op == b"\x88":
            stack.append(True)
        elif op == b"\x89":
            stack.append(False)
        elif op == b"J":                                    # BININT
            stack.append(r.unpack("<i"))
        elif op == b"K":                                    # BININT1
            stack.append(r.take(1)[0])
        elif op == b"M":                                    # BININT2
            stack.append(r.unpack("<H"))
        elif op == b"\x8a":                                 # LONG1
            stack.append(int.from_bytes(r.take(r.take(1)[0]), "little", signed=True))
        elif op == b"G":                                    # BINFLOAT
            stack.append(r.unpack(">d"))
        elif op == b"U" or op == b"C":                      # SHORT_BINSTRING (py2 str), SHORT_BINBYTES
            stack.append(r.take(r.take(1)[0]))
        elif op == b"T":                                    # BINSTRING (py2 str): signed length
            stack.append(r.take(r.unpack("<i")))
        elif op == b"B":                                    # BINBYTES
            stack.append(r.take(r.unpack("<I")))
        elif op == b"X":                                    # BINUNICODE
            stack.append(r.take(r.unpack("<I")).decode("utf-8", "surrogatepass"))
        elif op == b"\x8c":                                 # SHORT_BINUNICODE
            stack.append(r.take(r.take(1)[0]).decode("utf-8", "surrogatepass"))
        elif op == b"c":                                    # GLOBAL
            module = r.line()
            global_(module, r.line())
        elif op == b"\x93":                                 # STACK_GLOBAL
            name = stack.pop()
            module = stack.pop()
            if not isinstance(module, str) or not isinstance(name, str):
                raise UnsafePickleError("malformed STACK_GLOBAL")
            global_(module, name)
        elif op == b"R":                                    # REDUCE
            args = stack.pop()
            func = stack.pop()
            stack.append(_reduce(func, args, object_arrays))
        elif op == b"b":                                    # BUILD
            state = stack.pop()
            stub = stack.pop()
            built = _build(stub, state, object_arrays)
            stack.append(built)
            for k, v in memo.items():                       # a memoized stub now means the built value
                if v is stub:
                    memo[k] = built
        else:
            raise UnsafePickleError(f"pickle opcode {op!r} at byte {r.pos - 1} is not supported")
