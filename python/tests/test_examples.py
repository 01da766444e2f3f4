"""The examples in examples/python run against a real server."""

from __future__ import annotations

import signal

from conftest import DEADLINE, ROOT, Children, Recorder, event_is

from gopherdiscovery import Client, Server, Subscriber

EXAMPLES = ROOT / "examples" / "python"


def test_member_example_keeps_its_pool_current(server: Server, subscriber: Subscriber, children: Children) -> None:
    urls = server.urls
    events = Recorder()
    subscriber.on_event(events)
    member = children.python(
        str(EXAMPLES / "member.py"),
        "--name",
        "http://127.0.0.1:8003",
        "--survey",
        urls.survey,
        "--publish",
        urls.publish,
        "--snapshot",
        urls.snapshot,
    )
    member.wait_line(lambda line: line == "joined http://127.0.0.1:8003")
    member.wait_line(lambda line: line.startswith("peers http://127.0.0.1:8003;"), what="its own peer list")
    joined = events.wait_for(event_is("joined", "http://127.0.0.1:8003"))
    assert joined.member.metadata == {"lang": "python"}
    with Client("http://127.0.0.1:8001", survey=urls.survey):
        line = member.wait_line(
            lambda line: line.startswith("peers http://127.0.0.1:8001,http://127.0.0.1:8003;"), what="the new pool"
        )
        assert "is owned by http://127.0.0.1:800" in line
    member.proc.send_signal(signal.SIGTERM)
    code, err = member.finish()
    assert code == 0, err
    assert member.lines.items[-1] == "left http://127.0.0.1:8003"
    assert events.wait_for(event_is("left", "http://127.0.0.1:8003")).reason == "closed"


def test_watch_async_example(server: Server, children: Children) -> None:
    urls = server.urls
    watcher = children.python(
        str(EXAMPLES / "watch_async.py"), "--publish", urls.publish, "--snapshot", urls.snapshot, "--count", "3"
    )
    watcher.wait_line(lambda line: line == "peers - (0)", what="the first (empty) list")
    with Client("http://127.0.0.1:8005", survey=urls.survey):
        watcher.wait_line(lambda line: line == "peers http://127.0.0.1:8005 (1)")
    code, err = watcher.finish(DEADLINE)
    assert code == 0, err
    assert watcher.lines.items == ["peers - (0)", "peers http://127.0.0.1:8005 (1)", "peers - (0)", "done after 3 peer lists"]


def test_watch_async_example_stops_on_sigterm(server: Server, children: Children) -> None:
    urls = server.urls
    watcher = children.python(str(EXAMPLES / "watch_async.py"), "--publish", urls.publish, "--snapshot", urls.snapshot)
    watcher.wait_line(lambda line: line == "peers - (0)")
    watcher.proc.send_signal(signal.SIGTERM)
    code, err = watcher.finish()
    assert code == 0, err
    assert watcher.lines.items[-1] == "stopped"
