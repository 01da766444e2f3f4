"""A groupcache-style member: joins the mesh and keeps its peer pool current.

    python examples/python/member.py --name http://127.0.0.1:8003 \
        --survey tcp://127.0.0.1:40007 --publish tcp://127.0.0.1:50007 --snapshot tcp://127.0.0.1:50008

A distributed cache shards keys over its peers: every process must know the current
peer list, and the list must change when a peer comes or goes. Here the member
answers the server's surveys (so the others see it) and watches the member set (so it
sees the others); ``on_peers`` hands each new list to the pool. Runs until SIGINT or
SIGTERM, then leaves cleanly.

In an authenticated mesh, ``--keyring-file PATH`` (or the environment variable
``GOPHERDISCOVERY_KEYRING_FILE``, as for the CLI) names the keyring: one base64 key
per line, the first signs. Keys never go on the command line, where ``ps`` shows them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import threading
from bisect import bisect
from typing import Optional

import gopherdiscovery


class PeerPool:
    """Consistent hashing over the peers, as groupcache's HTTPPool.Set does."""

    REPLICAS = 50

    def __init__(self, me: str) -> None:
        self.me = me
        self._lock = threading.Lock()  # set() runs on the dispatcher thread
        self._ring: list[tuple[int, str]] = []

    @staticmethod
    def _hash(key: str) -> int:
        return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big")

    def set(self, peers: list[str]) -> None:
        ring = sorted((self._hash(f"{i}:{p}"), p) for p in peers for i in range(self.REPLICAS))
        with self._lock:
            self._ring = ring
        print(f"peers {','.join(peers)}; key 'user:42' is owned by {self.owner('user:42')}", flush=True)

    def owner(self, key: str) -> Optional[str]:
        """The peer that owns ``key`` (None while the pool is empty)."""
        with self._lock:
            if not self._ring:
                return None
            i = bisect(self._ring, (self._hash(key), "")) % len(self._ring)
            return self._ring[i][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", "--service", dest="name", required=True, help="this member's name, its address, e.g. http://10.0.0.1:8080 (--service: alias)")
    ap.add_argument("--survey", action="append", help="server survey URL (repeatable)")
    ap.add_argument("--publish", default=gopherdiscovery.DEFAULT_PUBLISH_URL)
    ap.add_argument("--snapshot", default=gopherdiscovery.DEFAULT_SNAPSHOT_URL)
    ap.add_argument(
        "--keyring-file",
        default=os.environ.get("GOPHERDISCOVERY_KEYRING_FILE"),
        help="keyring of an authenticated mesh (default: $GOPHERDISCOVERY_KEYRING_FILE)",
    )
    args = ap.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    pool = PeerPool(args.name)
    with gopherdiscovery.Client(
        args.name,
        survey=args.survey or gopherdiscovery.DEFAULT_SURVEY_URL,
        metadata={"lang": "python"},
        publish=args.publish,
        snapshot=args.snapshot,
        keyring_file=args.keyring_file,
    ) as member:
        print(f"joined {args.name}", flush=True)
        member.on_peers(pool.set)  # from now on, pool.set runs on the dispatcher thread
        stop.wait()
    print(f"left {args.name}", flush=True)


if __name__ == "__main__":
    main()
