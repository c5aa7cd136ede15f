"""`pytest benchmarks/` collects the bench_*.py files (pytest-benchmark entry points); `pytest tests` never
does (pyproject's testpaths = tests). Sizes are the quick ones; `--benchmark-disable` runs each case once."""
import pytest


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
