"""Runs the groups for the command line: header, one table per group, optional JSON and plot."""
import importlib
import json
import os
import time
import traceback

from fastnn.bench import ALL, GROUPS
from fastnn.bench import _harness as H

# FP32 FMA peak of one core for the plot's peak line: shared/anchors/hw_limits.py measures it (228 on the
# issue's Zen 5; 117 on the Zen 4-class VM of the 2026-11-25 run). FASTNN_PEAK_GFLOPS_PER_CORE overrides.
PEAK_GFLOPS_PER_CORE = float(os.environ.get("FASTNN_PEAK_GFLOPS_PER_CORE", "228"))


def header(args):
    import fastnn
    info = fastnn.build_info()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"fastnn {info['version']}, commit {H.commit()}, SIMD path {info['cpu_capability']}",
             f"machine: {H.machine_line()}",
             f"threads: {args.threads or 'group default'}; load average {load}; "
             f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    return lines


def run_group(name, args):
    """Run one group's main; returns what it measured (JSON-able) or None."""
    mod = importlib.import_module(GROUPS[name])
    if name != "gemm":
        return mod.main(args)
    captured = {}
    measure = mod.measure

    def keep(a):  # gemm.main prints its tables; keep the numbers for --json/--plot too
        captured["res"] = measure(a)
        return captured["res"]

    mod.measure = keep
    try:
        mod.main(args)
    finally:
        mod.measure = measure
    return [dict(row, lib=lib, threads=t) for (lib, t), rows in captured.get("res", {}).items()
            for row in rows.values()]


def smoke_sizes():
    """FASTNN_BENCH_SMOKE=1: the smallest cases, to test the command line in seconds."""
    gemm = importlib.import_module(GROUPS["gemm"])
    gemm.QUICK_SQUARES, gemm.TRAINING, gemm.QUICK_TRAINING = (32, 64), ((8, 16, 8),), ((8, 16, 8),)


def run(args):
    """Returns the process exit status (non-zero when a group failed)."""
    groups = ALL if args.group == "all" else (args.group,)
    out = {"header": header(args), "groups": {}}
    print("\n".join(out["header"]), flush=True)
    failed = []
    for name in groups:
        print(f"\n## {name}\n", flush=True)
        t0 = time.perf_counter()
        try:
            out["groups"][name] = run_group(name, args)
        except Exception:  # one broken group must not lose the others' results
            traceback.print_exc()
            failed.append(name)
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
        print(f"wrote {args.json}")
    if args.plot:
        plot(out["groups"], args.plot)
    if failed:
        print("FAILED groups: " + ", ".join(failed))
    return 1 if failed else 0


def plot(groups, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install matplotlib (or fastnn[bench]); no plot written")
        return
    gemm, train = groups.get("gemm"), groups.get("train")
    if not gemm and not train:
        print("--plot: run the gemm and/or train group to have something to plot; no plot written")
        return
    fig, axes = plt.subplots(1, bool(gemm) + bool(train), figsize=(6.5 * (bool(gemm) + bool(train)), 4.8),
                             squeeze=False)
    axes = list(axes[0])
    if gemm:
        ax = axes.pop(0)
        squares = [r for r in gemm if r["case"].startswith("square")]
        t = max(r["threads"] for r in squares)
        for lib in ("fastnn", "numpy", "torch"):
            pts = sorted((r["mnk"][0], r["gflops"]) for r in squares if r["lib"] == lib and r["threads"] == t)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=lib)
        ax.axhline(PEAK_GFLOPS_PER_CORE * t, color="k", ls="--", label=f"peak {PEAK_GFLOPS_PER_CORE * t:.0f}")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="n (square SGEMM n x n x n)", ylabel="GFLOP/s", title=f"SGEMM, {t} threads", ylim=(0, None))
        ax.legend()
    if train:
        ax = axes.pop(0)
        t = max(train["rows"])
        rows = train["rows"][t]
        peers = [p for p in train["libs"] if p != "fastnn"]
        width = 0.8 / max(1, len(peers))
        for j, p in enumerate(peers):
            xs = [i + (j - (len(peers) - 1) / 2) * width for i in range(len(rows))]
            ax.bar(xs, [r["speedup"].get(p, float("nan")) for r in rows], width, label=f"vs {p}")
        ax.scatter(range(len(rows)), [r["target"] for r in rows], marker="_", s=400, color="k", zorder=3,
                   label="target vs best peer")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["label"].replace(", ", "\n") for r in rows], fontsize=8)
        ax.set_yscale("log")  # ratios span 0.1x..100x
        ax.set(ylabel="fastnn speed-up (x, log scale)", title=f"End-to-end speed-up of fastnn, {t} threads")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")
