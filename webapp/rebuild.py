"""A rebuild started from the web app: one at a time per process, in a thread of its own, its progress as data.

Why a thread: any click in the app reruns the page's script and stops whatever
that run was doing, so a build run inside the script would be lost to a stray
click. Here the build carries on in its thread while each run of the page only
reads `Rebuilder.progress()` (or waits for the next change with `wait`) and
draws it; a page opened later, in any session, shows the same rebuild.
Nothing here imports Streamlit: it is tested with a real build, no browser.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from indexer.text import utc_now

if TYPE_CHECKING:  # only the types: indexer.build loads the model stack
    from indexer.build import BuildSummary, StageCallback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One rebuild as it stands: each stage reached with its latest (done, total), and how it ended."""

    job: int
    index_dir: str
    offline: bool
    started_at: str
    #: (stage, done, total) per stage reached, in order; the last one is the current stage.
    stages: tuple[tuple[str, int, int], ...] = ()
    finished_at: str = ""
    summary: BuildSummary | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return not self.finished_at

    @property
    def ok(self) -> bool:
        return bool(self.finished_at) and not self.error


def same_index(a: Path | str, b: Path | str) -> bool:
    """Whether two index folder paths name the same folder (the folder is a symlink: not resolved)."""
    return os.path.abspath(a) == os.path.abspath(b)


class Rebuilder:
    """Runs at most one build at a time (a second `start` is refused) and keeps the latest one's progress."""

    def __init__(self) -> None:
        self._busy = threading.Lock()  # held from `start` until the build has ended and said how
        self._changed = threading.Condition()
        self._progress: Progress | None = None
        self._jobs = 0

    def start(self, index_dir: Path | str, build: Callable[[StageCallback], BuildSummary], *,
              offline: bool = False) -> bool:
        """Start `build(on_stage)` in its own thread; False (and nothing started) if a rebuild is running."""
        if not self._busy.acquire(blocking=False):
            return False
        try:
            with self._changed:
                self._jobs += 1
                self._set(Progress(job=self._jobs, index_dir=os.path.abspath(index_dir), offline=offline,
                                   started_at=utc_now()))
            threading.Thread(target=self._run, args=(build,), name="faq-rebuild", daemon=True).start()
        except BaseException:
            self._busy.release()
            raise
        return True

    @property
    def running(self) -> bool:
        return self._busy.locked()

    def progress(self) -> Progress | None:
        """The current or latest rebuild (None before the first)."""
        with self._changed:
            return self._progress

    def wait(self, seen: Progress | None, timeout: float) -> Progress | None:
        """The progress once it differs from `seen` (or after `timeout` seconds, whatever it is then)."""
        with self._changed:
            self._changed.wait_for(lambda: self._progress is not seen, timeout=timeout)
            return self._progress

    # -- the build's thread -------------------------------------------------------------------------------------
    def _run(self, build: Callable[[StageCallback], BuildSummary]) -> None:
        summary, error = None, "the build was interrupted"
        try:
            summary, error = build(self._on_stage), ""
        except Exception as exc:  # a bad FAQ, no model, a full disk: the previous index stays in place
            log.exception("rebuild failed")
            error = str(exc) or type(exc).__name__
        finally:
            with self._changed:  # free and finished at once: whoever sees it finished may start the next
                self._busy.release()
                assert self._progress is not None
                self._set(replace(self._progress, finished_at=utc_now(), summary=summary, error=error))

    def _on_stage(self, stage: str, done: int, total: int) -> None:
        with self._changed:
            current = self._progress
            assert current is not None
            stages = list(current.stages)
            if stages and stages[-1][0] == stage:
                stages[-1] = (stage, done, total)
            else:
                stages.append((stage, done, total))
            self._set(replace(current, stages=tuple(stages)))

    def _set(self, progress: Progress) -> None:
        self._progress = progress  # a new object on every change: `wait` compares identities
        self._changed.notify_all()
