"""``async for`` over peer lists under ``asyncio.run``."""

from __future__ import annotations

import asyncio
import threading

from conftest import DEADLINE

from gopherdiscovery import Client, Server, Subscriber


def test_changes_async_sees_a_join_and_a_leave(server: Server, subscriber: Subscriber) -> None:
    async def main() -> list[list[str]]:
        seen: list[list[str]] = []
        client = None
        ticks = 0

        async def tick() -> None:
            # Proves the loop stays free while the iterator waits.
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        async for peers in subscriber.changes_async(timeout=DEADLINE):
            seen.append(peers)
            if peers == []:
                if client is None:
                    client = Client("async-member", survey=server.urls.survey)
                else:
                    break
            elif peers == ["async-member"]:
                assert client is not None
                client.close()
        ticker.cancel()
        assert ticks > 0
        return seen

    assert asyncio.run(asyncio.wait_for(main(), DEADLINE * 2)) == [[], ["async-member"], []]


def test_cancelled_changes_async_leaves_no_waiting_thread(server: Server, subscriber: Subscriber) -> None:
    async def main() -> None:
        changes = subscriber.changes_async()
        assert await changes.__anext__() == []
        task = asyncio.ensure_future(changes.__anext__())  # nothing will come
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # The iterator is closed and its worker's wait ended.
        assert [p async for p in changes] == []

    before = threading.active_count()
    asyncio.run(asyncio.wait_for(main(), DEADLINE))  # returns: shutdown joined the worker
    assert threading.active_count() <= before
