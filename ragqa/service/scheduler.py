"""One question at a time through the model, first come first served, with a bounded wait.

llama.cpp runs one generation at a time in a process, and two generations sharing the
cores run slower than one after the other. So the service runs all work that touches
the model (retrieval, generation, checks) on one thread, in arrival order:

- a request that finds `max_waiting` requests already waiting is refused at once
  (BusyError, HTTP 503, with a Retry-After estimated from recent service times);
- a request that has waited `timeout` seconds without its turn coming leaves the line
  and is refused the same way;
- a request whose client went away leaves the line, or, once running, is told to stop
  (`ticket.cancelled`), so that no one waits behind work nobody will read.

`await scheduler.run(fn)` runs `fn(ticket)` on the thread and returns its result;
`submit` + `wait_turn` let a streaming response learn that its turn came (or was
refused) before it sends its headers."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import BusyError

log = logging.getLogger(__name__)

WAITING, RUNNING, LEFT = "waiting", "running", "left"


class Ticket:
    def __init__(self, fn: Callable[["Ticket"], Any], loop: asyncio.AbstractEventLoop):
        self.fn = fn
        self.loop = loop
        self.state = WAITING
        self.started: asyncio.Future = loop.create_future()
        self.finished: asyncio.Future = loop.create_future()
        self.cancelled = threading.Event()  # set when nobody wants the result any more
        for future in (self.started, self.finished):  # an outcome nobody awaits is not an error to log
            future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _resolve(self, future: asyncio.Future, value: Any = None, error: BaseException | None = None) -> None:
        def apply() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
        try:
            self.loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the event loop is gone (server shutting down)
            pass


class Scheduler:
    def __init__(self, max_waiting: int = 8, timeout: float = 120.0):
        self.max_waiting = max(0, max_waiting)
        self.timeout = timeout
        self._line: deque[Ticket] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._running: Ticket | None = None
        self._service_s = 1.0  # moving average of the time one request takes
        self._last_done = float("-inf")
        self._thread = threading.Thread(target=self._work, name="ragqa-scheduler", daemon=True)
        self._thread.start()

    # --- what callers use -------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"waiting": len(self._line), "running": self._running is not None,
                    "max_waiting": self.max_waiting, "timeout_s": self.timeout,
                    "mean_service_s": round(self._service_s, 3)}

    def busy(self, quiet: float = 0.0) -> bool:
        """A question is being answered or waiting, or one finished less than `quiet` seconds ago."""
        with self._cond:
            return (self._running is not None or bool(self._line)
                    or time.monotonic() - self._last_done < quiet)

    def submit(self, fn: Callable[[Ticket], Any], loop: asyncio.AbstractEventLoop | None = None) -> Ticket:
        ticket = Ticket(fn, loop or asyncio.get_running_loop())
        with self._cond:
            if self._closed:
                raise BusyError("the service is shutting down")
            if len(self._line) >= self.max_waiting and (self._running is not None or self._line):
                raise BusyError(f"{len(self._line)} questions are already waiting; try again shortly",
                                retry_after=self._retry_after())
            self._line.append(ticket)
            self._cond.notify()
        return ticket

    async def wait_turn(self, ticket: Ticket) -> None:
        """Return when the ticket's work has started; BusyError if it waited too long."""
        try:
            await asyncio.wait_for(asyncio.shield(ticket.started), self.timeout)
        except asyncio.TimeoutError:
            if self._leave(ticket):
                raise BusyError(f"no turn came within {self.timeout:g} s; try again later",
                                retry_after=self._retry_after()) from None
            await ticket.started  # it started just now
        except asyncio.CancelledError:  # the client went away
            self.abandon(ticket)
            raise

    async def result(self, ticket: Ticket) -> Any:
        try:
            return await asyncio.shield(ticket.finished)
        except asyncio.CancelledError:
            self.abandon(ticket)
            raise

    async def run(self, fn: Callable[[Ticket], Any]) -> Any:
        ticket = self.submit(fn)
        await self.wait_turn(ticket)
        return await self.result(ticket)

    def abandon(self, ticket: Ticket) -> None:
        """Nobody wants this ticket's result: out of the line, or told to stop."""
        ticket.cancelled.set()
        self._leave(ticket)

    def close(self, wait: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            for ticket in self._line:
                ticket.state = LEFT
                ticket._resolve(ticket.started, error=BusyError("the service is shutting down"))
            self._line.clear()
            self._cond.notify_all()
        self._thread.join(wait)

    # --- the thread -------------------------------------------------------------------

    def _leave(self, ticket: Ticket) -> bool:
        with self._cond:
            if ticket.state != WAITING:
                return False
            self._line.remove(ticket)
            ticket.state = LEFT
            return True

    def _retry_after(self) -> float:
        return round(max(1.0, (len(self._line) + 1) * self._service_s), 1)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._line and not self._closed:
                    self._cond.wait()
                if not self._line:
                    return
                ticket = self._line.popleft()
                ticket.state = RUNNING
                self._running = ticket
            ticket._resolve(ticket.started, True)
            t0 = time.perf_counter()
            try:
                ticket._resolve(ticket.finished, ticket.fn(ticket))
            except BaseException as e:  # delivered to the caller, who maps it to a response
                ticket._resolve(ticket.finished, error=e)
            finally:
                with self._cond:
                    self._running = None
                    self._last_done = time.monotonic()
                    self._service_s = 0.8 * self._service_s + 0.2 * (time.perf_counter() - t0)
