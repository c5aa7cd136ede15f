"""Groups whose benchmark lives in a source checkout's benchmarks/ (owned by the kernel groups).

``python -m fastnn.bench conv|elementwise`` runs ``benchmarks/bench_<name>.py`` of the checkout that this
fastnn was imported from, with the same --quick/--threads, and returns its printed table.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(script, args, threads_flag_repeated):
    path = os.path.join(ROOT, "benchmarks", script)
    if not os.path.exists(path):
        print(f"  {script} is not part of an installed fastnn: run this group from a source checkout")
        return None
    cmd = [sys.executable, path] + (["--quick"] if args.quick else [])
    threads = args.threads or [1, 2]
    if threads_flag_repeated:
        for t in threads:
            cmd += ["--threads", str(t)]
    else:
        cmd += ["--threads", *map(str, threads)]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)  # stderr (progress) passes through
    print(p.stdout, end="", flush=True)
    if p.returncode != 0:
        raise RuntimeError(f"{script} failed with exit code {p.returncode}")
    return {"table": p.stdout}
