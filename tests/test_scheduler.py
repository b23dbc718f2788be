"""The question line of the HTTP service: one at a time, in arrival order, bounded, with a
timeout; a request that leaves is dropped from the line."""

import asyncio
import threading

import pytest

from ragqa.errors import BusyError
from ragqa.service.scheduler import Scheduler


def run(coro):
    return asyncio.run(coro)


def test_work_runs_one_at_a_time_in_arrival_order():
    async def main():
        s = Scheduler(max_waiting=10, timeout=10)
        order, active, most = [], [0], [0]

        def job(i):
            def work(_ticket):
                active[0] += 1
                most[0] = max(most[0], active[0])
                threading.Event().wait(0.01)
                order.append(i)
                active[0] -= 1
                return i * i
            return work

        results = await asyncio.gather(*(s.run(job(i)) for i in range(6)))
        s.close()
        return order, most[0], results

    order, most, results = run(main())
    assert order == list(range(6)) and most == 1 and results == [i * i for i in range(6)]


def test_a_full_line_refuses_at_once_with_a_retry_hint():
    async def main():
        s = Scheduler(max_waiting=1, timeout=10)
        gate = threading.Event()
        running = asyncio.ensure_future(s.run(lambda _t: gate.wait(5)))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(s.run(lambda _t: "second"))
        await asyncio.sleep(0.05)
        with pytest.raises(BusyError) as refused:
            s.submit(lambda _t: "third")
        assert s.stats()["waiting"] == 1 and s.stats()["running"]
        gate.set()
        got = (await running, await waiting)
        s.close()
        return refused.value, got

    refused, got = run(main())
    assert "already waiting" in str(refused) and refused.retry_after >= 1
    assert got == (True, "second")


def test_a_request_that_waits_too_long_is_refused_and_leaves_the_line():
    async def main():
        s = Scheduler(max_waiting=4, timeout=0.2)
        gate = threading.Event()
        ran = []
        first = asyncio.ensure_future(s.run(lambda _t: gate.wait(5)))
        await asyncio.sleep(0.05)
        with pytest.raises(BusyError, match="no turn came"):
            await s.run(lambda _t: ran.append("late"))
        gate.set()
        await first
        await s.run(lambda _t: None)  # the line moves on
        s.close()
        return ran

    assert run(main()) == []  # the refused request's work never ran


def test_a_client_that_leaves_is_dropped_and_running_work_is_told_to_stop():
    async def main():
        s = Scheduler(max_waiting=4, timeout=10)
        gate, seen_cancel, ran = threading.Event(), threading.Event(), []

        def long(ticket):
            gate.wait(5)
            if ticket.cancelled.wait(2):
                seen_cancel.set()

        first = asyncio.ensure_future(s.run(long))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(s.run(lambda _t: ran.append("gone")))
        await asyncio.sleep(0.05)
        second.cancel()  # the waiting client disconnects
        first.cancel()  # and so does the running one
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.sleep(0.1)
        await s.run(lambda _t: None)
        s.close()
        return ran, seen_cancel.is_set()

    ran, cancelled = run(main())
    assert ran == [] and cancelled


def test_errors_reach_the_caller():
    async def main():
        s = Scheduler()
        try:
            await s.run(lambda _t: 1 / 0)
        finally:
            s.close()

    with pytest.raises(ZeroDivisionError):
        run(main())
