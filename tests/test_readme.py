"""The README's first five minutes stay true: its Keras program runs as printed, every name in its
table of supported features exists, and one install serves the demo and the tests."""
import contextlib
import inspect
import io
import os
import re

import pytest

import fastnn
from fastnn import callbacks, datasets, layers, losses, metrics, optimizers

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _readme():
    if not os.path.isfile(README):
        pytest.skip("README.md is not next to the tests (installed package)")
    with open(README, encoding="utf-8") as f:
        return f.read()


def _section(text, title):
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_keras_program_runs_as_printed():
    code = re.search(r"```python\n(.*?)```", _section(_readme(), "Keras programs"), re.S).group(1)
    assert "import fastnn as keras" in code and len(code.strip().splitlines()) <= 12
    fastnn.utils.set_random_seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    loss, accuracy = eval(out.getvalue().strip().splitlines()[-1])  # the program's last line prints evaluate
    assert accuracy > 0.8 and loss < 1.0


def test_one_install_serves_demo_and_tests():
    block = re.search(r"```bash\n(.*?)```", _section(_readme(), "The first five minutes"), re.S).group(1)
    assert block.count("pip install") == 1 and '".[test]"' in block
    assert "fastnn-demo" in block and "pytest" in block
    assert "few minutes" in _readme() and "skipped" in _readme()


# area -> where its names live (the Models, Data and Devices rows name concepts, checked where they can be)
_WHERE = {"Layers": [layers], "Losses": [losses], "Metrics": [metrics], "Optimizers": [optimizers],
          "LR schedules": [optimizers.schedules], "Callbacks": [callbacks], "Data": [datasets, fastnn, fastnn.utils],
          "Models": [fastnn, layers, fastnn.applications]}


def test_every_name_in_the_supported_table_exists():
    table = _section(_readme(), "What is supported")
    rows = re.findall(r"^\| ([^|]+?) \| (.+) \|$", table, re.M)
    areas = {area: cell for area, cell in rows if area not in ("Area", "---")}
    assert set(_WHERE) <= set(areas) and "Devices" in areas
    optimizer_args = set(inspect.signature(optimizers.Optimizer.__init__).parameters)
    for area, modules in _WHERE.items():
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", areas[area]):
            if area == "Optimizers" and name.islower():
                assert name in optimizer_args, name
            elif area == "Models" and name in ("build", "call", "add_weight", "add_loss", "train_step"):
                assert hasattr(fastnn.Model, name), name
            elif area in ("Data",) and name in ("validation_split", "validation_data", "sample_weight",
                                                  "class_weight", "steps_per_epoch"):
                assert name in inspect.signature(fastnn.Model.fit).parameters, name
            elif area in ("Losses", "Metrics") and name in ("call", "add_weight"):
                assert hasattr(losses.Loss if area == "Losses" else metrics.Metric, name)
            else:
                assert any(hasattr(m, name) for m in modules), f"{area}: {name}"
