"""Many ``changes_async()`` watchers hold no thread: asyncio's default pool stays
free for ``asyncio.to_thread`` (and DNS lookups)."""

from __future__ import annotations

import asyncio
import threading

from conftest import DEADLINE

from gopherdiscovery import Client, Server, Subscriber

WATCHERS = 100


def test_100_async_watchers_leave_to_thread_responsive(server: Server, subscriber: Subscriber) -> None:
    async def main() -> None:
        iterators = [subscriber.changes_async(timeout=DEADLINE) for _ in range(WATCHERS)]
        for it in iterators:
            assert await it.__anext__() == []
        # Every watcher now waits for the next list.
        waits = [asyncio.ensure_future(it.__anext__()) for it in iterators]
        await asyncio.sleep(0)
        threads_while_waiting = threading.active_count()
        # The default pool (a handful of threads) is free: this returns.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), DEADLINE) == 42
        pool = [t for t in threading.enumerate() if t.name.startswith("asyncio_")]
        assert len(pool) <= 1, [t.name for t in pool]
        with Client("async-many", survey=server.urls.survey):
            lists = await asyncio.wait_for(asyncio.gather(*waits), DEADLINE)
        assert lists == [["async-many"]] * WATCHERS
        assert threading.active_count() <= threads_while_waiting + 1
        for it in iterators:
            it.close()

    asyncio.run(asyncio.wait_for(main(), DEADLINE * 2))


def test_close_from_another_thread_ends_an_async_wait(server: Server, subscriber: Subscriber) -> None:
    async def main() -> None:
        changes = subscriber.changes_async()
        assert await changes.__anext__() == []
        waiting = asyncio.ensure_future(changes.__anext__())
        await asyncio.sleep(0.05)
        threading.Thread(target=changes.close).start()
        try:
            await asyncio.wait_for(waiting, DEADLINE)
            raise AssertionError("a closed iterator yielded")
        except StopAsyncIteration:
            pass

    asyncio.run(asyncio.wait_for(main(), DEADLINE * 2))
