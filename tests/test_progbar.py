"""Keras 3 progress bar format: in place on a TTY, final line only otherwise; verbose 2."""
import io

import pytest

from fastnn import _progbar
from fastnn._progbar import Progbar


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(_progbar.time, "time", c)
    return c


class _Tty(io.StringIO):
    def isatty(self):
        return True


BOLD, END, GREEN, WHITE = "\x1b[1m", "\x1b[0m", "\33[32m", "\33[37m"


def test_final_line_format_not_a_tty(clock, capsys):
    bar = Progbar(469, verbose=1)
    for step in range(1, 469):
        clock.now += 0.004
        bar.update(step, [("accuracy", 0.5), ("loss", 1.0)])
    assert capsys.readouterr().out == ""  # not a TTY: nothing until the epoch ends
    clock.now += 0.004
    bar.update(469, [("accuracy", 0.88171), ("loss", 0.39801), ("val_accuracy", 0.9797), ("val_loss", 0.00064)])
    out = capsys.readouterr().out
    assert out == (f"{BOLD}469/469{END} {GREEN}{'━' * 20}{END}{WHITE}{END} {BOLD}2s{END} 4ms/step - accuracy: 0.8817 "
                   f"- loss: 0.3980 - val_accuracy: 0.9797 - val_loss: 6.4000e-04\n")


def test_in_place_redraw_on_tty(clock, monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(_progbar.sys, "stdout", tty)
    bar = Progbar(10, verbose=1)
    clock.now += 1.0
    bar.update(1, [("loss", 2.5)])
    first = tty.getvalue()
    assert first == f"\r{BOLD} 1/10{END} {GREEN}━━{END}{WHITE}{'━' * 18}{END} {BOLD}9s{END} 1s/step - loss: 2.5000"
    clock.now += 0.01  # within the 0.05 s interval: no redraw
    bar.update(2, [("loss", 2.0)])
    assert tty.getvalue() == first
    clock.now += 0.5
    bar.update(3, [("loss", 1.0)])
    second = tty.getvalue()[len(first):]
    width = len(f" 1/10 {'━' * 20} 9s 1s/step - loss: 2.5000")
    assert second.startswith("\b" * width + "\r")
    assert f"{BOLD} 3/10{END} {GREEN}{'━' * 6}{END}" in second and "ms/step" in second  # first step excluded
    clock.now += 100.0
    bar.update(10, [("loss", 0.5)])
    assert tty.getvalue().endswith(f"{BOLD}102s{END} 11s/step - loss: 0.5000\n")


def test_eta_formats(clock, monkeypatch):
    monkeypatch.setattr(_progbar.sys, "stdout", _Tty())
    for per_step, expected in [(2.0, "1:38"), (100.0, "1:21:40"), (0.001, "0s")]:
        bar = Progbar(50, verbose=1)
        clock.now += per_step
        bar.update(1)
        assert f"{BOLD}{expected}{END}" in _progbar.sys.stdout.getvalue()
        clock.now += 1.0


def test_verbose_2_and_0(clock, capsys):
    bar = Progbar(20, verbose=2)
    clock.now += 0.0005
    bar.update(1, [("loss", 1.0)])
    clock.now += 0.5
    bar.update(20, [("loss", 0.25), ("accuracy", 0.75)])  # names keep their first-seen order
    assert capsys.readouterr().out == "20/20 - 1s - 26ms/step - loss: 0.2500 - accuracy: 0.7500\n"
    silent = Progbar(5, verbose=0)
    silent.update(5, [("loss", 1.0)])
    assert capsys.readouterr().out == ""


def test_unit_formats():
    assert _progbar._format_time(2.4, "step") == " 2s/step"
    assert _progbar._format_time(0.0042, "step") == " 4ms/step"
    assert _progbar._format_time(0.000137, "step") == " 137us/step"
    assert _progbar._format_value(0.0005) == " 5.0000e-04" and _progbar._format_value(-2.0) == " -2.0000"
