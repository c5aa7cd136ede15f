"""Keras 3's progress bar (``keras/src/utils/progbar.py``), exact format.

``verbose=1``: `` 93/469 ━━━━━━━━━━━━━━━━━━━━ 3s 8ms/step - accuracy: 0.7012 - loss: 0.9311`` (counter
and time in bold, the done part of the bar green, the rest white, via ANSI codes), redrawn in place
(``\\b``... ``\\r``) on a terminal or notebook with the ETA while running and the elapsed time when
done; when stdout is not a terminal only the final line of each epoch is printed.
``verbose=2``: one plain line at the end: ``469/469 - 5s - 9ms/step - accuracy: 0.8817 - loss: 0.3980``.
"""
import math
import os
import sys
import time

import numpy as np


def _dynamic_display():
    out = sys.stdout
    return (hasattr(out, "isatty") and out.isatty()) or "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ


def _write(message):
    sys.stdout.write(message)
    sys.stdout.flush()


def _format_time(time_per_unit, unit_name):
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1000.0:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1000000.0:.0f}us/{unit_name}"


def _format_value(value):
    avg = float(np.mean(value))
    return f" {avg:.4f}" if abs(avg) > 1e-3 else f" {avg:.4e}"


class Progbar:
    """Progress bar over ``target`` steps. ``update(current, values, finalize=None)``: ``values`` is a
    list of ``(name, value)``; values are shown as given (fit passes the epoch's running means)."""

    def __init__(self, target, width=20, verbose=1, interval=0.05, unit_name="step"):
        self.target, self.width, self.verbose = target, width, verbose
        self.interval, self.unit_name = interval, unit_name
        self._dynamic = _dynamic_display()
        self._values = {}
        self._prev_total_width = 0
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None

    def due(self, current):
        """True when an update at step ``current`` would draw something (so callers can skip building values)."""
        if self.verbose != 1 or not self._dynamic:
            return False
        return time.time() - self._last_update >= self.interval

    def _estimate_step_duration(self, current, now):
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit

    def update(self, current, values=None, finalize=None):
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for k, v in values or ():
            self._values[k] = v
        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if not finalize and (not self._dynamic or now - self._last_update < self.interval):
                return
            self._draw(current, now, time_per_unit, finalize)
        elif self.verbose == 2 and finalize:
            numdigits = int(math.log10(self.target)) + 1 if self.target else 1
            info = ("%" + str(numdigits) + "d/%d") % (current, self.target) + f" - {now - self._start:.0f}s"
            info += " -" + _format_time(time_per_unit, self.unit_name)
            for k, v in self._values.items():
                info += f" - {k}:" + _format_value(v)
            _write(info + "\n")
        self._last_update = now

    def _draw(self, current, now, time_per_unit, finalize):
        message = ("\b" * self._prev_total_width + "\r") if self._dynamic else ""
        special = 0
        if self.target is not None:
            numdigits = int(math.log10(self.target)) + 1 if self.target else 1
            bar = f"\x1b[1m{('%' + str(numdigits) + 'd/%d') % (current, self.target)}\x1b[0m "
            special += 8
            prog_width = int(self.width * (current / self.target if self.target else 1.0))
            if prog_width > 0:
                bar += "\33[32m" + "━" * prog_width + "\x1b[0m"
                special += 9
            bar += "\33[37m" + "━" * (self.width - prog_width) + "\x1b[0m"
            special += 9
        else:
            bar = "%7d/Unknown" % current
        if self.target is not None and not finalize:
            eta = time_per_unit * (self.target - current)
            if eta > 3600:
                eta_format = "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
            elif eta > 60:
                eta_format = "%d:%02d" % (eta // 60, eta % 60)
            else:
                eta_format = "%ds" % eta
            info = f" \x1b[1m{eta_format}\x1b[0m"
        else:
            info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
        special += 8
        info += _format_time(time_per_unit, self.unit_name)
        for k, v in self._values.items():
            info += f" - {k}:" + _format_value(v)
        total_width = len(bar) + len(info) - special
        message += bar + info
        if self._dynamic and self._prev_total_width > total_width:
            message += " " * (self._prev_total_width - total_width)
        if finalize:
            message += "\n"
        _write(message)
        self._prev_total_width = total_width
