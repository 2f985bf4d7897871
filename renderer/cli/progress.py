"""Progress of long runs, on stderr only: a tqdm bar on a terminal, a plain line every few seconds
otherwise (CI logs), nothing with ``--format json`` or ``--quiet``.

Where it sits: ``cli``. The pipeline only calls ``BuildRequest.progress(done, total)``; how that
is shown is decided here. stdout is never written (it carries the result, or the JSON document).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

from tqdm import tqdm

LINE_INTERVAL = 5.0  # seconds between plain progress lines


class Bar:
    """A tqdm progress bar, opened on the first report and closed when the run is done."""

    def __init__(self, stream: TextIO, label: str):
        self.stream, self.label = stream, label
        self._bar: Optional[tqdm] = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self.label, unit="bundle", file=self.stream, mininterval=0.2,
                             dynamic_ncols=True)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Lines:
    """``render: LABEL 1200/10000 bundles (12%), 40 s`` at most every ``interval`` seconds, and once at the end."""

    def __init__(self, stream: TextIO, label: str, interval: float = LINE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic):
        self.stream, self.label, self.interval, self.clock = stream, label, interval, clock
        self._start: Optional[float] = None
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self._start is None:
            self._start = self._last = now
        if done >= total or now - self._last >= self.interval:
            self._last = now
            share = f" ({100 * done // total}%)" if total else ""
            self.stream.write(f"render: {self.label} {done}/{total} bundles{share}, {now - self._start:.0f} s\n")
            self.stream.flush()

    def close(self) -> None:
        pass


def reporter(fmt: str, quiet: bool, label: str = "rendering", stream: Optional[TextIO] = None):
    """The ``BuildRequest.progress`` callback for these flags: None when nothing is to be shown."""
    if quiet or fmt != "text":
        return None
    stream = stream or sys.stderr
    return Bar(stream, label) if stream.isatty() else Lines(stream, label)
