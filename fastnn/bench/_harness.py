"""Shared benchmark machinery: noise-aware timing, per-library subprocesses, markdown tables."""
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

# CPU use by other processes (in cores) above which a timing sample is retaken: the machine may be
# shared, and a sample taken while another process competes for a core measures that process.
MAX_FOREIGN = 0.35


def _busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def _own_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def foreign_load(fn):
    """Run fn(); return (wall seconds, average cores used meanwhile by other processes)."""
    b0, c0, w0 = _busy_seconds(), _own_seconds(), time.perf_counter()
    fn()
    wall = time.perf_counter() - w0
    other = (_busy_seconds() - b0) - (_own_seconds() - c0)
    return wall, max(0.0, other / max(wall, 1e-9))


def calibrate(fn, min_sample_s=0.1, warmup=2):
    """Calls of fn() per sample so that one sample lasts >= min_sample_s (after `warmup` calls)."""
    for _ in range(warmup):
        fn()
    inner = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_sample_s or inner >= 1 << 20:
            return inner
        inner = max(inner * 2, int(inner * min_sample_s / max(dt, 1e-9) * 1.2))


# Relative spread (interquartile range / median) of the kept samples above which a measurement is
# marked noisy: its median would move by more than the differences the tables are read for.
MAX_SPREAD = 0.10


def _spread(times):
    if len(times) < 3:
        return 0.0
    q = statistics.quantiles(times, n=4)
    return (q[2] - q[0]) / max(statistics.median(times), 1e-12)


def timeit(fn, reps=7, min_sample_s=0.1, warmup=2, cpu_clock=False, max_tries=None):
    """Per-call seconds of fn(): warm up, size an inner loop so a sample lasts >= min_sample_s, take
    `reps` samples, retaking (up to max_tries, default 3*reps, tries) those disturbed by other processes.
    cpu_clock: time with this thread's CPU time instead (robust on a busy machine, meaningful only
    for single-threaded runs, where the library computes in the calling thread).
    Returns {"median", "min", "spread", "noisy"}: noisy when disturbed samples had to be kept or the
    samples kept spread by more than MAX_SPREAD (a ratio of such medians is not a result)."""
    inner = calibrate(fn, min_sample_s, warmup)

    def sample():
        for _ in range(inner):
            fn()

    if cpu_clock:
        times = []
        for _ in range(reps):
            t0 = time.thread_time()
            sample()
            times.append((time.thread_time() - t0) / inner)
        spread = _spread(times)
        return {"median": statistics.median(times), "min": min(times), "spread": spread, "noisy": spread > MAX_SPREAD}

    clean, dirty = [], []
    for _ in range(max_tries or 3 * reps):
        wall, load = foreign_load(sample)
        (clean if load <= MAX_FOREIGN else dirty).append(wall / inner)
        if len(clean) >= reps:
            break
    disturbed = len(clean) < reps
    times = clean + sorted(dirty)[: reps - len(clean)] if disturbed else clean
    spread = _spread(times)
    return {"median": statistics.median(times), "min": min(times), "spread": spread,
            "noisy": disturbed or spread > MAX_SPREAD}


def timeit_interleaved(fns, reps=7, min_sample_s=0.03):
    """Median seconds per call of each fn in `fns` (a dict). Samples of the different fns are
    taken in turn, so load from other processes on this shared machine hits them alike."""
    inner = {k: calibrate(f, min_sample_s, warmup=3) for k, f in fns.items()}
    samples = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            n = inner[k]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            samples[k].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in samples.items()}


# Two-core probe. On this project's VMs both vCPUs sometimes share one physical core for seconds at a
# time (2-thread FMA-bound work then runs at one-thread speed while a spin test still shows two busy
# CPUs); a library measured in such a phase would be compared with peers measured outside it.
MIN_TWO_CORE_SPEEDUP = 1.6
MAX_CORE_WAIT_S = 120.0
QUICK_CORE_WAIT_S = 3.0  # --quick: a quick run must end within a minute; it marks the rows instead


def two_core_speedup():
    """Speed-up of a 256^3 fastnn GEMM from 1 to 2 threads (best of 3 x 8 calls each)."""
    import numpy as np

    import fastnn
    a = np.ones((256, 256), np.float32)
    old = fastnn.get_num_threads()
    best = {}
    try:
        for n in (1, 2):
            fastnn.set_num_threads(n)
            fastnn.kernels.gemm(a, a)
            ts = []
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(8):
                    fastnn.kernels.gemm(a, a)
                ts.append(time.perf_counter() - t0)
            best[n] = min(ts)
    finally:
        fastnn.set_num_threads(old)
    return best[1] / best[2]


_core_wait = {"gave_up": False}


def wait_two_cores(nthreads, max_wait=MAX_CORE_WAIT_S):
    """Before a worker that runs nthreads >= 2 threads: wait (up to max_wait seconds) until two
    threads run FMA-bound work >= MIN_TWO_CORE_SPEEDUP times faster than one. Returns True when they
    do (or nthreads < 2), False when the cores stayed shared (the worker's timings are then disturbed).
    After one timeout (a machine whose cores are always shared) it probes once instead of waiting."""
    if nthreads < 2:
        return True
    if _core_wait["gave_up"]:
        return two_core_speedup() >= MIN_TWO_CORE_SPEEDUP
    t0 = time.perf_counter()
    ok = True
    while two_core_speedup() < MIN_TWO_CORE_SPEEDUP:
        if time.perf_counter() - t0 > max_wait:
            _core_wait["gave_up"], ok = True, False
            print(f"  (two threads never ran {MIN_TWO_CORE_SPEEDUP}x faster than one in {max_wait:.0f} s: "
                  "measuring anyway, rows marked noisy; not waiting again)", file=sys.stderr, flush=True)
            break
        time.sleep(0.5)
    waited = time.perf_counter() - t0
    if waited > 1.0 and ok:
        print(f"  (waited {waited:.0f} s for the second core to be a core of its own)", file=sys.stderr, flush=True)
    time.sleep(0.05)  # the probe's OpenMP threads go back to sleep before the worker starts
    return ok


def peer_env(nthreads, max_wait=MAX_CORE_WAIT_S):
    """Environment for a library subprocess: every thread pool sized to nthreads, and OpenBLAS free
    to pick its best kernel (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, which this project's machines
    set to hold it to AVX2, are removed). Called right before each worker starts, it first waits
    for the machine's two cores (wait_two_cores) when the worker runs two threads or more; whether
    they came is kept in ``_core_wait["last_ok"]``."""
    _core_wait["last_ok"] = wait_two_cores(nthreads, max_wait)
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(nthreads)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    return env


def run_worker(group, lib, nthreads, extra_args=(), launcher=()):
    """Run `python -m fastnn.bench GROUP --worker LIB --threads N ...` (after ``launcher``, e.g. mpiexec's
    command line); return its RESULT rows."""
    import fastnn
    cmd = [*launcher, sys.executable, "-m", "fastnn.bench", group, "--worker", lib, "--threads", str(nthreads),
           *extra_args]
    # quick runs wait only briefly for two free cores, and mark what they measure without them
    env = peer_env(nthreads, QUICK_CORE_WAIT_S if "--quick" in extra_args else MAX_CORE_WAIT_S)
    cores_ok = _core_wait["last_ok"]
    # NOTE: cwd is where this fastnn was imported from: `python -m` puts cwd first on sys.path, and a
    # source checkout's fastnn/ (without the compiled module after `pip install .`) would shadow it.
    p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__))))
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
        raise RuntimeError(f"benchmark worker failed: {' '.join(cmd)}")
    rows = [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    if not cores_ok:  # measured while the two threads shared one core
        for r in rows:
            r["noisy"] = True
    return rows


def worker_flags(args):
    """The parent's flags that its workers take too (sample sizes and clock)."""
    return ["--clock", args.clock] + (["--quick"] if args.quick else [])


def emit(**row):
    print("RESULT " + json.dumps(row), flush=True)


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def machine_line():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import fastnn
    info = fastnn.build_info()
    return (f"{model}, {os.cpu_count()} cpus; fastnn {info['version']} ({info['cpu_capability']}, "
            f"{info['compiler']}); numpy {__import__('numpy').__version__}")


def commit():
    """Short hash of the checkout this fastnn was imported from ("unknown" for an installed one)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def markdown_table(headers, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(out)



def emit_rows(rows):
    for row in rows:
        emit(**row)


def one_worker_main(group, args, header, table):
    """main() of a group whose variants all run interleaved in one worker per thread count (pipeline, augment):
    prints ``header(threads)`` and ``table(rows)``; returns {threads: rows}."""
    out = {}
    for t in args.threads or [1]:
        print(header(t), flush=True)
        out[t] = run_worker(group, "all", t, worker_flags(args))
        print(table(out[t]))
    return out
