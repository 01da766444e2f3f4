"""Several servers: two CLI ``serve`` processes, members answering both (CLI, C and
Python), a Python subscriber and a watching Python client merging both. A server
is killed for real (SIGKILL): it turns stale in ``servers``, the view stays; then
the C member is killed (SIGKILL) and leaves once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import DEADLINE, ROOT, Child, Children, Recorder, c_program, event_is, eventually

import gopherdiscovery

CLI = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "gopherdiscovery"
FAST = ["--interval", "200", "--deadline", "100"]


def serve(children: Children, url: Callable[[str], str], n: int) -> tuple[str, str, str, Child]:
    survey, publish, snapshot = url(f"survey{n}"), url(f"publish{n}"), url(f"snapshot{n}")
    child = children.start(str(CLI), "serve", "--survey", survey, "--publish", publish, "--snapshot", snapshot, *FAST)
    child.wait_line(lambda line: line.startswith("serving "), what="the server's first line")
    return survey, publish, snapshot, child


@pytest.mark.skipif(not CLI.is_file(), reason="the Rust CLI is not built")
def test_two_servers_merged_and_one_killed(children: Children, url: Callable[[str], str], tmp_path: Path) -> None:
    member_c = c_program(tmp_path, "examples/c/member.c")
    sv1, pub1, snap1, _s1 = serve(children, url, 1)
    sv2, pub2, snap2, s2 = serve(children, url, 2)
    children.start(str(CLI), "join", "--name", "cli", "--survey", sv1, "--survey", sv2)
    # member NAME SURVEY_URL[,SURVEY_URL...] PUBLISH_URL SNAPSHOT_URL (examples/c/member.c):
    # it answers both servers and watches server 1, the one that stays.
    c = children.start(str(member_c), "c", f"{sv1},{sv2}", pub1, snap1, "lang=c")
    c.wait_line(lambda line: line == "joined c", what="the C member's join")
    everyone = ["c", "cli", "py"]
    events = Recorder()
    with gopherdiscovery.Subscriber(servers=[(pub1, snap1), (pub2, snap2)]) as sub, gopherdiscovery.Client(
        "py", survey=[sv1, sv2], servers=[(pub1, snap1), (pub2, snap2)]
    ) as watcher:
        sub.on_event(events)
        assert sub.wait_for(lambda p: p == everyone, DEADLINE) == everyone
        assert watcher.wait_for(lambda p: p == everyone, DEADLINE) == everyone
        eventually(
            lambda: all(s.state == "live" and s.members == 3 for s in sub.servers), what="both servers live, 3 members"
        )
        assert {m.name: m.metadata.get("lang") for m in sub.members}["c"] == "c"
        servers = sub.servers
        assert [s.publish for s in servers] == [pub1, pub2]
        assert [s.snapshot for s in servers] == [snap1, snap2]
        assert all(s.epoch != 0 for s in servers) and servers[0].epoch != servers[1].epoch
        assert isinstance(servers[0].warming, bool) and "SubscribedServer(" in repr(servers[0])
        # One joined event per member (replayed or live), on the dispatcher thread:
        # wait for all three before counting, so none lands after the count.
        for name in everyone:
            events.wait_for(event_is("joined", name), what=f"{name} joining")
        joined = len(events.items)
        assert joined == 3, events.items

        s2.proc.send_signal(signal.SIGKILL)
        eventually(lambda: sub.servers[1].state == "stale", what="server 2 stale")
        assert sub.peers == everyone
        assert sub.state == "live"
        assert sub.servers[0].state == "live"
        assert len(events.items) == joined, f"events after a server died: {events.items[joined:]!r}"

        # The C member dies (SIGKILL): it leaves once, though it answered two servers.
        c.proc.send_signal(signal.SIGKILL)
        events.wait_for(event_is("left", "c"), what="c leaving")
        time.sleep(1.0)  # five survey intervals: no second leave, no rejoin
        assert sub.peers == ["cli", "py"]
        assert [(e.kind, e.member.name) for e in events.items[joined:]] == [("left", "c")]

        # A member leaves: one event, reason closed, though it answered two servers.
        watcher.close()
        events.wait_for(event_is("left", "py", "closed"), what="py leaving")
        assert sub.peers == ["cli"]
        assert [e.kind for e in events.items[joined:]] == ["left", "left"]


def test_servers_excludes_publish() -> None:
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="servers"):
        gopherdiscovery.Subscriber(publish="ipc:///tmp/x", servers=[("ipc:///tmp/a", "ipc:///tmp/b")])
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="servers"):
        gopherdiscovery.Subscriber(servers=[])
