"""A server, three clients and a subscriber: peers, members, updates, leaves."""

from __future__ import annotations

from typing import Callable

import pytest
from conftest import DEADLINE, Recorder, eventually, event_is

import gopherdiscovery
from gopherdiscovery import Client, Server, Subscriber


def test_three_clients_and_a_subscriber(server: Server, subscriber: Subscriber) -> None:
    events = Recorder()
    subscriber.on_event(events)
    survey = server.urls.survey
    with Client("http://10.0.0.3:8080", survey=survey, metadata={"zone": "c"}) as c3, Client(
        "http://10.0.0.1:8080", survey=[survey], metadata={"zone": "a", "weight": "2"}
    ), Client("http://10.0.0.2:8080", survey=survey):
        names = ["http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080"]
        assert subscriber.wait_for(lambda peers: peers == names, DEADLINE) == names
        assert subscriber.peers == names
        assert subscriber.state == "live"

        members = {m.name: m for m in subscriber.members}
        assert [m.name for m in subscriber.members] == names  # sorted by name
        assert members["http://10.0.0.1:8080"].metadata == {"zone": "a", "weight": "2"}
        assert members["http://10.0.0.2:8080"].metadata == {}
        assert members["http://10.0.0.3:8080"] == c3.member
        assert all(m.incarnation != 0 for m in members.values())
        assert server.members == subscriber.members
        for name in names:
            events.wait_for(event_is("joined", name), what=f"joined {name}")

        # A metadata update is published at once as "updated".
        c3.set_metadata({"zone": "c", "draining": "yes"})
        updated = events.wait_for(event_is("updated", "http://10.0.0.3:8080"), what="updated")
        assert updated.member.metadata == {"zone": "c", "draining": "yes"}
        assert updated.reason is None
        # The first metadata change of this incarnation: generation 1, everywhere.
        assert updated.member.generation == 1 and c3.member.generation == 1
        eventually(
            lambda: {m.name: m.metadata for m in subscriber.members}["http://10.0.0.3:8080"]["draining"] == "yes"
        )
        assert c3.member.metadata == {"zone": "c", "draining": "yes"}

        # Closing a client: it leaves at once, reason "closed".
        c3.close()
        c3.close()  # idempotent
        assert c3.closed
        left = events.wait_for(event_is("left", "http://10.0.0.3:8080", "closed"), what="left (closed)")
        assert left.member.metadata == {"zone": "c", "draining": "yes"}
        assert subscriber.wait_for(lambda p: p == names[:2], DEADLINE) == names[:2]
        assert str(left) == "left http://10.0.0.3:8080 (closed)"
    # Leaving the with block closed the other two.
    events.wait_for(event_is("left", "http://10.0.0.1:8080", "closed"))
    assert subscriber.wait_for(lambda p: p == [], DEADLINE) == []


def test_client_that_watches(server: Server) -> None:
    urls = server.urls
    with Client("a", survey=urls.survey, publish=urls.publish, snapshot=urls.snapshot) as a, Client(
        "b", survey=urls.survey
    ) as b:
        assert a.watching and not b.watching
        assert a.wait_for(lambda p: p == ["a", "b"], DEADLINE) == ["a", "b"]
        assert [m.name for m in a.members] == ["a", "b"]
        assert a.connections == 1
        with pytest.raises(gopherdiscovery.InvalidOptionError, match="does not watch"):
            b.peers  # noqa: B018
        with pytest.raises(gopherdiscovery.InvalidOptionError, match="does not watch"):
            b.on_peers(print)


def test_on_peers_gives_the_current_list_first_and_works_as_a_decorator(
    server: Server, subscriber: Subscriber
) -> None:
    with Client("a", survey=server.urls.survey):
        subscriber.wait_for(lambda p: p == ["a"], DEADLINE)
        got = Recorder()

        @subscriber.on_peers
        def on_peers(peers: list[str]) -> None:
            got(peers)

        assert callable(on_peers)
        got.wait_for(lambda p: p == ["a"], what="the current list")
        with Client("b", survey=server.urls.survey):
            got.wait_for(lambda p: p == ["a", "b"], what="the new list")
    got.wait_for(lambda p: p == [])
    # Each list is given once: no repeats of an unchanged list.
    assert all(x != y for x, y in zip(got.items, got.items[1:]))


def test_on_event_replays_present_members_as_joined(server: Server, subscriber: Subscriber) -> None:
    with Client("a", survey=server.urls.survey, metadata={"k": "v"}):
        subscriber.wait_for(lambda p: p == ["a"], DEADLINE)
        events = Recorder()
        subscriber.on_event(events)
        joined = events.wait_for(event_is("joined", "a"))
        assert joined.member.metadata == {"k": "v"}
    events.wait_for(event_is("left", "a", "closed"))
    assert [(e.kind, e.member.name) for e in events.items] == [("joined", "a"), ("left", "a")]


def test_state_syncing_live_stale(url: Callable[[str], str]) -> None:
    with Subscriber(publish=url("publish"), snapshot=url("snapshot")) as sub:
        assert sub.state == "syncing"
        assert sub.peers == []
        with Server(survey=url("survey"), publish=url("publish"), snapshot=url("snapshot"), interval=0.1, deadline=0.05):
            eventually(lambda: sub.state == "live", what="live")
        # Heartbeats stopped with the server: the view turns stale and is kept.
        eventually(lambda: sub.state == "stale", what="stale")
        assert repr(sub).endswith("stale>")


def test_legacy_publisher(url: Callable[[str], str]) -> None:
    with Server(
        survey=url("survey"),
        publish=url("publish"),
        snapshot=url("snapshot"),
        legacy_publish=url("legacy"),
        interval=0.2,
        deadline=0.1,
    ) as server, Subscriber(publish=url("legacy"), snapshot=None) as sub:
        assert server.urls.legacy_publish == url("legacy")
        with Client("legacy-member", survey=server.urls.survey):
            assert sub.wait_for(lambda p: p == ["legacy-member"], DEADLINE)


def test_tcp_port_zero_is_reported_as_bound() -> None:
    with Server(survey="tcp://127.0.0.1:0", publish="tcp://127.0.0.1:0", snapshot="tcp://127.0.0.1:0") as server:
        urls = server.urls
        ports = {u.rsplit(":", 1)[1] for u in (urls.survey, urls.publish, urls.snapshot)}
        assert "0" not in ports and len(ports) == 3
        with Subscriber(publish=urls.publish, snapshot=urls.snapshot) as sub, Client("t", survey=urls.survey):
            assert sub.wait_for(lambda p: p == ["t"], DEADLINE) == ["t"]
        assert server.epoch != 0
    assert server.closed
    assert server.urls == urls  # still readable after close
    with pytest.raises(gopherdiscovery.ClosedError, match="server is closed"):
        server.members  # noqa: B018


def test_changes_iterates_peer_lists(server: Server, subscriber: Subscriber) -> None:
    changes = subscriber.changes(timeout=DEADLINE)
    assert next(changes) == []
    with Client("a", survey=server.urls.survey):
        assert next(changes) == ["a"]
    assert next(changes) == []
    changes.close()
    assert list(changes) == []


def test_changes_stops_after_a_quiet_timeout(server: Server, subscriber: Subscriber) -> None:
    assert list(subscriber.changes(timeout=0.3)) == [[]]


def test_values_and_reprs() -> None:
    m = gopherdiscovery.Member("a", {"k": "v"}, 7)
    assert m == gopherdiscovery.Member("a", {"k": "v"}, 7)
    assert hash(m) == hash(gopherdiscovery.Member("a", {"k": "v"}, 7))
    assert m != gopherdiscovery.Member("a", {"k": "w"}, 7)
    assert repr(m) == "Member(name='a', metadata={'k': 'v'}, incarnation=0x0000000000000007, generation=0)"
    md = m.metadata
    md["k"] = "changed"
    assert m.metadata == {"k": "v"}  # a copy: members are immutable
    with pytest.raises(AttributeError):
        m.name = "b"  # type: ignore[misc]
