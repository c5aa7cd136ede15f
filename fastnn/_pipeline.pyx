# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# distutils: language = c++
"""fit's batch pipeline: shuffled gather of rows into reused float32 buffers, next batch prefetched.

    loader = BatchLoader(x, y, batch_size=32, shuffle=True, seed=None, prefetch=True, x_dtype=np.float32)
    for epoch in range(epochs):
        for xb, yb in loader.epoch(epoch):   # xb: float32 (n,) + x.shape[1:], yb: see below
            train_step(xb, yb)

- x: uint8, float32 or float64 rows of any trailing shape are gathered and cast to float32 in one
  pass (users pass raw uint8 MNIST); other numeric dtypes are converted to float32 once, up front,
  and a non-contiguous x is made C-contiguous once (both copies of the whole array).
  x_dtype=np.int32 (a model whose input is integer, e.g. token ids for an Embedding): uint8, int32,
  int64, float32 and float64 rows are gathered into int32 buffers (no float round trip); other
  dtypes are converted to int32 once, up front.
- y (optional): integer labels come out as int64 (uint8/int32/int64 gathered directly, other
  integer types converted once), float (and bool) targets as float32; any trailing shape.
- The batches of an epoch follow a permutation that depends only on (seed, epoch): a Fisher-Yates
  shuffle driven by SplitMix64, identical on every machine and numpy version. seed=None draws one
  from `fastnn.random.next_seed()` (so `fastnn.utils.set_random_seed` makes it reproducible).
  shuffle=False keeps the order of x. The last batch holds the remaining N % batch_size rows.
- The gather runs without the GIL. With prefetch=True a background C++ thread (no Python inside)
  gathers batch k+1 into the second of two buffers while the caller works on batch k. It only pays
  when a core is idle during the step; the environment variable FASTNN_PREFETCH=0 turns it off
  everywhere (to compare end-to-end timings without touching code).
- NOTE: the returned arrays are views of the loader's reused buffers: a batch stays valid until
  the next batch is requested. Copy it to keep it. Starting a new epoch ends the previous one's
  iterator.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t, uintptr_t
from libc.string cimport memcpy
cimport cython

import os

import numpy as np

__all__ = ["BatchLoader"]

cdef extern from *:
    """
    #include <atomic>
    #include <condition_variable>
    #include <cstddef>
    #include <cstdint>
    #include <mutex>
    #include <thread>
    // Row casts, compiled for AVX-512, AVX2 and baseline x86-64; the loader picks one at load time
    // (GCC/Clang function multi-versioning), so the wheel stays portable.
    #if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
    #define FASTNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #define FASTNN_CLONES
    #endif
    #define FASTNN_CAST(name, S, D) FASTNN_CLONES static void name(D* __restrict d, const S* __restrict s, \
                                                                   std::ptrdiff_t n) \
        { for (std::ptrdiff_t i = 0; i < n; ++i) d[i] = (D)s[i]; }
    FASTNN_CAST(fastnn_cast_u8_f32, std::uint8_t, float)
    FASTNN_CAST(fastnn_cast_f64_f32, double, float)
    FASTNN_CAST(fastnn_cast_u8_i64, std::uint8_t, std::int64_t)
    FASTNN_CAST(fastnn_cast_i32_i64, std::int32_t, std::int64_t)
    // Ask for a source row's cache lines ahead of use: shuffled rows are scattered over the whole
    // array, so each one is a cold DRAM access the hardware prefetcher cannot predict.
    static inline void fastnn_prefetch(const void* p, std::ptrdiff_t bytes) {
        const char* c = (const char*)p;
        for (std::ptrdiff_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 0);
    }
    // One background thread sharing one job at a time with the caller. A job is fn(arg, begin, end)
    // over rows [0, total); rows are claimed CHUNK at a time from an atomic counter. submit() queues
    // a job for the thread; wait() makes the caller claim whatever rows are left, then waits for the
    // thread's last chunk. So a job finished in the background costs the caller nothing, and one the
    // thread never got CPU for (a busy machine) is simply done by the caller: prefetching is never
    // slower than a synchronous gather. The thread never touches Python objects (no GIL needed).
    struct fastnn_Prefetcher {
        typedef void (*Fn)(void*, std::ptrdiff_t, std::ptrdiff_t);
        static constexpr std::ptrdiff_t CHUNK = 8;
        std::mutex m;
        std::condition_variable cv;
        Fn fn = nullptr;
        void* arg = nullptr;
        std::ptrdiff_t total = 0;
        std::atomic<std::ptrdiff_t> next{0};
        std::atomic<bool> worker_busy{false};
        bool queued = false, stop = false;
        std::thread th;  // NOTE: declared last, so every field above is initialised before it starts
        fastnn_Prefetcher() : th([this] { loop(); }) {}
        ~fastnn_Prefetcher() {
            wait();
            { std::lock_guard<std::mutex> lk(m); stop = true; }
            cv.notify_one();
            th.join();
        }
        void work() {
            for (;;) {
                std::ptrdiff_t b = next.fetch_add(CHUNK, std::memory_order_relaxed);
                if (b >= total) return;
                fn(arg, b, b + CHUNK < total ? b + CHUNK : total);
            }
        }
        void loop() {
            std::unique_lock<std::mutex> lk(m);
            for (;;) {
                cv.wait(lk, [this] { return queued || stop; });
                if (!queued) return;
                queued = false;
                worker_busy.store(true, std::memory_order_relaxed);  // published by the unlock
                lk.unlock();
                work();
                worker_busy.store(false, std::memory_order_release);
                lk.lock();
            }
        }
        void submit(Fn f, void* a, std::ptrdiff_t n) {  // NOTE: only after wait() (one job at a time)
            {
                std::lock_guard<std::mutex> lk(m);
                fn = f; arg = a; total = n;
                next.store(0, std::memory_order_relaxed);
                queued = true;
            }
            cv.notify_one();
        }
        void wait() {
            { std::lock_guard<std::mutex> lk(m); queued = false; }  // a late thread no longer joins
            work();
            while (worker_busy.load(std::memory_order_acquire)) std::this_thread::yield();
        }
    };
    """
    void fastnn_prefetch(const void* p, Py_ssize_t bytes) nogil
    void fastnn_cast_u8_f32(float* d, const uint8_t* s, Py_ssize_t n) nogil
    void fastnn_cast_f64_f32(float* d, const double* s, Py_ssize_t n) nogil
    void fastnn_cast_u8_i64(int64_t* d, const uint8_t* s, Py_ssize_t n) nogil
    void fastnn_cast_i32_i64(int64_t* d, const int32_t* s, Py_ssize_t n) nogil
    cppclass fastnn_Prefetcher:
        fastnn_Prefetcher() except + nogil
        void submit(void (*f)(void*, Py_ssize_t, Py_ssize_t) noexcept nogil, void* a, Py_ssize_t n) nogil
        void wait() nogil


# Source kinds: how a row is read. Labels keep their kind: integers -> int64, floats -> float32.
cdef enum Kind:
    K_NONE, K_U8, K_I32, K_I64, K_F32, K_F64

_X_KINDS = {np.dtype(np.uint8): K_U8, np.dtype(np.float32): K_F32, np.dtype(np.float64): K_F64}
_Y_KINDS = {np.dtype(np.uint8): K_U8, np.dtype(np.int32): K_I32, np.dtype(np.int64): K_I64,
            np.dtype(np.float32): K_F32, np.dtype(np.float64): K_F64}
_XINT_KINDS = _Y_KINDS  # integer inputs: every kind above gathers into int32

cdef struct Job:
    const char* x          # source rows (C-contiguous), xrow elements each
    Kind xkind
    bint xint              # x gathers into int32 (integer model inputs), else float32
    Py_ssize_t xrow
    const char* y
    Kind ykind
    Py_ssize_t yrow
    const int64_t* idx     # the batch's row indices (a slice of the epoch permutation)
    Py_ssize_t n           # rows in this batch
    char* xout             # n * xrow float32 (or int32 when xint)
    char* yout             # n * yrow int64 (integer labels) or float32 (float targets)


cdef enum:
    PREFETCH_ROWS = 4   # rows requested ahead of the one being copied

ctypedef fused src_t:
    uint8_t
    int32_t
    int64_t
    float
    double

ctypedef fused dst_t:
    float
    int32_t
    int64_t


cdef inline void gather(const src_t* src, Py_ssize_t row, const int64_t* idx, Py_ssize_t n,
                        dst_t* dst) noexcept nogil:
    """dst[i, :] = cast(src[idx[i], :]) for i < n (the casts: the multi-versioned C++ loops above)."""
    cdef Py_ssize_t i, k
    cdef const src_t* s
    cdef dst_t* d
    for i in range(min(n, PREFETCH_ROWS)):
        fastnn_prefetch(src + idx[i] * row, row * sizeof(src_t))
    for i in range(n):
        if i + PREFETCH_ROWS < n:
            fastnn_prefetch(src + idx[i + PREFETCH_ROWS] * row, row * sizeof(src_t))
        s = src + idx[i] * row
        d = dst + i * row
        if src_t is dst_t:
            memcpy(d, s, row * sizeof(dst_t))
        elif src_t is uint8_t and dst_t is float:
            fastnn_cast_u8_f32(d, s, row)
        elif src_t is double and dst_t is float:
            fastnn_cast_f64_f32(d, s, row)
        elif src_t is uint8_t and dst_t is int64_t:
            fastnn_cast_u8_i64(d, s, row)
        elif src_t is int32_t and dst_t is int64_t:
            fastnn_cast_i32_i64(d, s, row)
        else:  # combinations run_job never asks for
            for k in range(row):
                d[k] = <dst_t>s[k]


cdef void run_job(void* p, Py_ssize_t begin, Py_ssize_t end) noexcept nogil:
    """Gather rows [begin, end) of the job's batch (x, then y)."""
    cdef Job* j = <Job*>p
    cdef const int64_t* idx = j.idx + begin
    cdef Py_ssize_t n = end - begin
    cdef float* xout = <float*>j.xout + begin * j.xrow
    cdef int32_t* xids = <int32_t*>j.xout + begin * j.xrow
    if j.xint:
        if j.xkind == K_I32:
            gather(<const int32_t*>j.x, j.xrow, idx, n, xids)
        elif j.xkind == K_I64:
            gather(<const int64_t*>j.x, j.xrow, idx, n, xids)
        elif j.xkind == K_U8:
            gather(<const uint8_t*>j.x, j.xrow, idx, n, xids)
        elif j.xkind == K_F32:
            gather(<const float*>j.x, j.xrow, idx, n, xids)
        else:
            gather(<const double*>j.x, j.xrow, idx, n, xids)
    elif j.xkind == K_U8:
        gather(<const uint8_t*>j.x, j.xrow, idx, n, xout)
    elif j.xkind == K_F32:
        gather(<const float*>j.x, j.xrow, idx, n, xout)
    else:
        gather(<const double*>j.x, j.xrow, idx, n, xout)
    cdef int64_t* ylab = <int64_t*>j.yout + begin * j.yrow
    cdef float* yval = <float*>j.yout + begin * j.yrow
    if j.ykind == K_U8:
        gather(<const uint8_t*>j.y, j.yrow, idx, n, ylab)
    elif j.ykind == K_I32:
        gather(<const int32_t*>j.y, j.yrow, idx, n, ylab)
    elif j.ykind == K_I64:
        gather(<const int64_t*>j.y, j.yrow, idx, n, ylab)
    elif j.ykind == K_F32:
        gather(<const float*>j.y, j.yrow, idx, n, yval)
    elif j.ykind == K_F64:
        gather(<const double*>j.y, j.yrow, idx, n, yval)


cdef inline uint64_t splitmix64(uint64_t* state) noexcept nogil:
    state[0] += 0x9E3779B97F4A7C15ULL
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef void permute(int64_t* out, Py_ssize_t n, uint64_t seed, uint64_t epoch, bint shuffle) noexcept nogil:
    """out = the epoch's order of 0..n-1: identity, or an unbiased Fisher-Yates shuffle keyed by (seed, epoch)."""
    cdef Py_ssize_t i
    cdef uint64_t state = epoch, bound, threshold, r
    cdef int64_t t
    for i in range(n):
        out[i] = i
    if not shuffle:
        return
    state = splitmix64(&state) ^ seed    # decorrelate consecutive epochs before mixing in the seed
    for i in range(n - 1, 0, -1):
        bound = <uint64_t>(i + 1)
        threshold = (-bound) % bound     # reject the low 2**64 % bound values: no modulo bias
        r = splitmix64(&state)
        while r < threshold:
            r = splitmix64(&state)
        r = r % bound
        t = out[i]
        out[i] = out[r]
        out[r] = t


cdef inline char* address(object a):
    return <char*><uintptr_t>a.__array_interface__["data"][0]


@cython.no_gc_clear   # NOTE: the prefetch thread may be reading x and writing the buffers until __dealloc__
cdef class BatchLoader:
    """Batches of (x, y) rows for fit/evaluate/predict; see the module docstring."""

    cdef readonly object x, y
    cdef readonly Py_ssize_t num_samples, batch_size, num_batches
    cdef readonly bint shuffle, prefetch
    cdef readonly object seed
    cdef object _perm, _xviews, _yviews
    cdef Job _jobs[2]
    cdef fastnn_Prefetcher* _pf
    cdef bint _inflight
    cdef Py_ssize_t _generation, _next_epoch

    def __init__(self, x, y=None, batch_size=32, shuffle=True, seed=None, prefetch=True, x_dtype=np.float32):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample, got shape {x.shape}")
        x_dtype = np.dtype(x_dtype)
        if x_dtype not in (np.dtype(np.float32), np.dtype(np.int32)):
            raise ValueError(f"x_dtype must be float32 or int32, got {x_dtype}")
        xint = x_dtype == np.dtype(np.int32)
        kinds = _XINT_KINDS if xint else _X_KINDS
        if x.dtype not in kinds:
            if x.dtype.kind not in "biuf":
                raise TypeError(f"x must be numeric, got dtype {x.dtype}")
            x = x.astype(x_dtype)
        self.x = np.ascontiguousarray(x)
        self.num_samples = x.shape[0]
        cdef Kind ykind = K_NONE
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0 or y.shape[0] != x.shape[0]:
                raise ValueError(f"x and y must have the same number of samples, got x {x.shape} and y {y.shape}")
            if y.dtype not in _Y_KINDS:
                if y.dtype.kind in "iu":
                    y = y.astype(np.int64)
                elif y.dtype.kind in "bf":
                    y = y.astype(np.float32)
                else:
                    raise TypeError(f"y must be numeric, got dtype {y.dtype}")
            y = np.ascontiguousarray(y)
            ykind = _Y_KINDS[y.dtype]
        self.y = y
        if seed is None:
            from fastnn.random import next_seed
            seed = next_seed()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        self.seed = int(seed)
        self.batch_size = min(int(batch_size), self.num_samples)
        self.num_batches = (self.num_samples + self.batch_size - 1) // self.batch_size
        self.shuffle = bool(shuffle)
        self.prefetch = bool(prefetch) and self.num_batches > 1 and os.environ.get("FASTNN_PREFETCH") != "0"
        self._perm = np.empty(self.num_samples, dtype=np.int64)
        nbuf = 2 if self.prefetch else 1
        self._xviews = [np.empty((self.batch_size,) + x.shape[1:], x_dtype) for _ in range(nbuf)]
        self._yviews = [None] * nbuf
        if y is not None:
            ydtype = np.int64 if ykind in (K_U8, K_I32, K_I64) else np.float32
            self._yviews = [np.empty((self.batch_size,) + y.shape[1:], ydtype) for _ in range(nbuf)]
        cdef int s
        for s in range(nbuf):
            self._jobs[s].x = address(self.x)
            self._jobs[s].xkind = kinds[self.x.dtype]
            self._jobs[s].xint = xint
            self._jobs[s].xrow = self.x.size // self.num_samples
            self._jobs[s].xout = address(self._xviews[s])
            self._jobs[s].ykind = ykind
            if y is not None:
                self._jobs[s].y = address(y)
                self._jobs[s].yrow = y.size // self.num_samples
                self._jobs[s].yout = address(self._yviews[s])
        if self.prefetch:
            self._pf = new fastnn_Prefetcher()

    def __dealloc__(self):
        if self._pf != NULL:
            with nogil:
                del self._pf      # finishes a queued gather, then joins the thread
            self._pf = NULL

    def __len__(self):
        return self.num_batches

    def epoch_indices(self, epoch):
        """The order (int64 array of row indices) in which `epoch(epoch)` visits the samples."""
        out = np.empty(self.num_samples, dtype=np.int64)
        permute(<int64_t*>address(out), self.num_samples, self.seed, <uint64_t>epoch, self.shuffle)
        return out

    def epoch(self, epoch=None):
        """An iterator over the epoch's batches `(xb, yb)` (yb is None without y). `epoch=None`
        continues after the last epoch started (0 first). Ends any previous epoch's iterator."""
        if epoch is None:
            epoch = self._next_epoch
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self._wait()                                 # the buffers and the permutation are ours again
        self._next_epoch = epoch + 1
        self._generation += 1
        permute(<int64_t*>address(self._perm), self.num_samples, self.seed, <uint64_t>epoch, self.shuffle)
        if self.prefetch:
            self._submit(0)
        return _EpochIter(self, self._generation)

    def __iter__(self):
        return self.epoch()

    cdef void _setup(self, Py_ssize_t k, int slot):
        cdef Py_ssize_t start = k * self.batch_size
        self._jobs[slot].idx = <const int64_t*>address(self._perm) + start
        self._jobs[slot].n = min(self.batch_size, self.num_samples - start)

    cdef void _submit(self, Py_ssize_t k):
        cdef int slot = k % 2
        self._setup(k, slot)
        with nogil:
            self._pf.submit(run_job, &self._jobs[slot], self._jobs[slot].n)
        self._inflight = True

    cdef void _wait(self):
        if self._inflight:
            with nogil:
                self._pf.wait()
            self._inflight = False

    cdef object _batch(self, Py_ssize_t k):
        """Batch k of the current epoch: gathered now (no prefetch) or awaited, then k+1 queued."""
        cdef int slot = 0
        if self.prefetch:
            slot = k % 2
            self._wait()
            if k + 1 < self.num_batches:
                self._submit(k + 1)
        else:
            self._setup(k, 0)
            with nogil:
                run_job(&self._jobs[0], 0, self._jobs[0].n)
        xb, yb = self._xviews[slot], self._yviews[slot]
        cdef Py_ssize_t n = self._jobs[slot].n
        if n != self.batch_size:
            xb = xb[:n]
            yb = None if yb is None else yb[:n]
        return xb, yb


@cython.final
cdef class _EpochIter:
    cdef BatchLoader loader
    cdef Py_ssize_t generation, k

    def __cinit__(self, BatchLoader loader, Py_ssize_t generation):
        self.loader = loader
        self.generation = generation

    def __iter__(self):
        return self

    def __len__(self):
        return self.loader.num_batches - self.k

    def __next__(self):
        if self.generation != self.loader._generation:
            raise RuntimeError("this epoch's iterator was ended by starting another epoch on the same BatchLoader")
        if self.k >= self.loader.num_batches:
            raise StopIteration
        batch = self.loader._batch(self.k)
        self.k += 1
        return batch
