"""Watches the member set from asyncio: one line per new peer list.

    python examples/python/watch_async.py --publish tcp://127.0.0.1:50007 --snapshot tcp://127.0.0.1:50008

``changes_async()`` yields the current peer list once the first snapshot is in, then
every new list; the event loop stays free meanwhile (the wait runs in a worker
thread). Stops after ``--count`` lists, after ``--timeout`` seconds without a change,
or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Optional

import gopherdiscovery


async def watch(publish: str, snapshot: str, count: Optional[int], timeout: Optional[float]) -> int:
    seen = 0
    with gopherdiscovery.Subscriber(publish=publish, snapshot=snapshot) as sub:
        async for peers in sub.changes_async(timeout=timeout):
            print(f"peers {','.join(peers) or '-'} ({len(peers)})", flush=True)
            seen += 1
            if count is not None and seen >= count:
                break
    return seen


async def main(args: argparse.Namespace) -> None:
    task = asyncio.ensure_future(watch(args.publish, args.snapshot, args.count, args.timeout))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        seen = await task
        print(f"done after {seen} peer lists", flush=True)
    except asyncio.CancelledError:
        print("stopped", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--publish", default=gopherdiscovery.DEFAULT_PUBLISH_URL)
    ap.add_argument("--snapshot", default=gopherdiscovery.DEFAULT_SNAPSHOT_URL)
    ap.add_argument("--count", type=int, help="stop after this many peer lists")
    ap.add_argument("--timeout", type=float, help="stop after this many seconds without a change")
    asyncio.run(main(ap.parse_args()))
