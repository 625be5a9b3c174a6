"""Work handed from the app's threads to one background thread: queue, worker, tick, fork.

The SignalPipeline and the export stage's batch processor both delegate their background work
here, as the OpenTelemetry SDK's ``BatchSpanProcessor`` delegates to one internal class. Items
run in the order they were handed over, in batches, on one thread at a time.

Waking another thread costs the app's thread a GIL hand-off, so the worker is not woken per
item. It wakes when ``wake_at`` items wait (a full batch), every ``interval_s`` (when it runs
what is queued, then ``tick``), and at ``stop``. A caller that flushes runs what is queued on
its own thread, where the data still sits in the CPU's caches. So a lone call costs no wake-up
of its own: its work waits for the worker's next round, or for a flush.

The queue is bounded: ``put`` refuses an item that finds it full (the caller then does without
the background), or, given ``on_drop``, drops the oldest item to make room. A forked child
starts afresh: an empty queue, and a worker of its own once something is handed over.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from frictionlens.health import count_internal_error

_log = logging.getLogger(__name__)

T = TypeVar("T")

#: items waiting at which the worker is woken at once (a full batch)
WAKE_AT = 256


class Handoff(Generic[T]):
    """A bounded queue drained in batches by ``run``, on one worker thread or a flusher.

    ``run(items)`` gets every item queued so far, oldest first; ``tick()`` runs on the
    worker every ``interval_s`` once it has started, after the queue. Exceptions from both
    are counted under ``name`` and never stop the worker."""

    def __init__(
        self,
        run: Callable[[list[T]], None],
        *,
        name: str,
        max_queued: int,
        interval_s: float,
        tick: Callable[[], None] | None = None,
        wake_at: int = WAKE_AT,
        on_drop: Callable[[T], None] | None = None,
    ) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self._run = run
        self._tick = tick
        self._on_drop = on_drop
        self.name = name
        self.max_queued = max_queued
        self.interval_s = interval_s
        self.wake_at = max(1, min(wake_at, max_queued // 2))
        self._fresh()
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (h := ref()) is not None and h._fresh())

    def _fresh(self) -> None:
        """State of a new handoff, and of a forked child (which has none of the parent's threads)."""
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._running = threading.RLock()
        """held while items run: one runner at a time, in order"""
        self._runner: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- the app's side ----------------------------------------------------------------------
    def put(self, item: T) -> bool:
        """Queue ``item``; False when it was refused (stopped, or full without ``on_drop``)."""
        dropped: list[T] = []
        with self._lock:
            if self._stopping:
                return False
            if len(self._items) >= self.max_queued:
                if self._on_drop is None:
                    return False
                dropped.append(self._items.popleft())
            self._items.append(item)
            if len(self._items) >= self.wake_at:
                self._wake.notify()
        if dropped and self._on_drop is not None:
            self._on_drop(dropped[0])
        self.start()
        return True

    def start(self) -> None:
        """Start the worker (and so the ticks) if it is not running yet."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()

    def running_here(self) -> bool:
        """Whether the current thread is running queued items now (the worker, or a flusher)."""
        return self._runner == threading.get_ident()

    def drain(self, timeout_s: float) -> bool:
        """Run everything queued, on this thread, after whatever is running now; False when
        that did not finish within ``timeout_s``."""
        if not self._running.acquire(timeout=max(0.0, timeout_s)):
            return False
        try:
            return self._run_queued(time.monotonic() + timeout_s)
        finally:
            self._running.release()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Refuse new items, run the queued ones, stop the worker."""
        with self._lock:
            self._stopping = True
            thread = self._thread
            self._wake.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self.drain(timeout_s)

    # -- the worker --------------------------------------------------------------------------
    def _run_queued(self, deadline: float | None = None) -> bool:
        """Run the queued items in batches until none is left (True) or ``deadline`` passes;
        the caller holds ``_running``."""
        outer = self._runner
        self._runner = threading.get_ident()
        try:
            while True:
                with self._lock:
                    if not self._items:
                        return True
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    batch = list(self._items)
                    self._items.clear()
                try:
                    self._run(batch)
                except Exception:
                    count_internal_error(self.name)
                    _log.debug("%s: a batch failed", self.name, exc_info=True)
        finally:
            self._runner = outer

    def _work(self) -> None:
        next_tick = time.monotonic() + self.interval_s
        while True:
            with self._lock:
                while not self._stopping and len(self._items) < self.wake_at:
                    left = next_tick - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                stopping = self._stopping
            with self._running:
                self._run_queued()
                if stopping:
                    return
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.interval_s
                    self._run_tick()

    def _run_tick(self) -> None:
        if self._tick is None:
            return
        outer = self._runner
        self._runner = threading.get_ident()
        try:
            self._tick()
        except Exception:
            count_internal_error(self.name)
            _log.debug("%s: tick failed", self.name, exc_info=True)
        finally:
            self._runner = outer
