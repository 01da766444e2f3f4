"""Callbacks, closing from anywhere, the GIL and signals, and no leaks."""

from __future__ import annotations

import logging
import signal
import textwrap
import threading
from typing import Callable

import pytest
from conftest import DEADLINE, Children, Recorder, eventually, open_fds, os_threads, thread_names

import gopherdiscovery
from gopherdiscovery import Client, Server, Subscriber


def test_a_raising_callback_is_logged_and_delivery_goes_on(
    server: Server, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Recorder()

    def bad(peers: list[str]) -> None:
        calls(peers)
        raise RuntimeError(f"boom with {peers}")

    def bad_event(event: gopherdiscovery.Event) -> None:
        raise KeyError("event boom")

    good = Recorder()
    subscriber.on_peers(bad)
    subscriber.on_event(bad_event)
    subscriber.on_peers(good)
    with Client("a", survey=server.urls.survey), Client("b", survey=server.urls.survey):
        good.wait_for(lambda p: p == ["a", "b"], what="both members")
    good.wait_for(lambda p: p == [], what="both gone")
    # The raising callback went on being called too.
    calls.wait_for(lambda p: p == [], what="the raising callback's last call")
    errors = [r for r in caplog.records if r.name == "gopherdiscovery" and r.levelno == logging.ERROR]
    assert any("boom with" in str(r.exc_info[1]) for r in errors if r.exc_info)
    assert any(isinstance(r.exc_info[1], KeyError) for r in errors if r.exc_info)
    assert all("delivery goes on" in r.getMessage() for r in errors)


def test_close_from_inside_a_callback(server: Server) -> None:
    sub = Subscriber(publish=server.urls.publish, snapshot=server.urls.snapshot)
    closed_inside = threading.Event()
    later = Recorder()

    def closer(peers: list[str]) -> None:
        if peers == ["a"]:
            sub.close()
            closed_inside.set()

    sub.on_peers(closer)
    sub.on_peers(later)
    with Client("a", survey=server.urls.survey):
        assert closed_inside.wait(DEADLINE)
    assert sub.closed
    eventually(lambda: not any(n.startswith("gopherdiscovery-dispatch") for n in thread_names()), what="dispatcher exit")
    # Using it afterwards says it is closed.
    with pytest.raises(gopherdiscovery.ClosedError):
        sub.peers  # noqa: B018
    sub.close()  # still idempotent


def test_client_closes_itself_from_its_event_callback(server: Server) -> None:
    urls = server.urls
    client = Client("self-closer", survey=urls.survey, publish=urls.publish, snapshot=urls.snapshot)
    done = threading.Event()

    @client.on_event
    def on_event(event: gopherdiscovery.Event) -> None:
        if event.kind == "joined" and event.member.name == "self-closer":
            client.close()
            done.set()

    assert done.wait(DEADLINE)
    assert client.closed
    eventually(lambda: server.members == [], what="the server to see it leave")


def test_close_from_another_thread_ends_a_blocking_changes(server: Server) -> None:
    sub = Subscriber(publish=server.urls.publish, snapshot=server.urls.snapshot)
    got = Recorder()
    finished = threading.Event()

    def consume() -> None:
        for peers in sub.changes():  # no timeout: only close() ends it
            got(peers)
        finished.set()

    t = threading.Thread(target=consume)
    t.start()
    got.wait_for(lambda p: p == [], what="the first list")
    sub.close()
    assert finished.wait(DEADLINE), "changes() did not end on close()"
    t.join(DEADLINE)
    assert not t.is_alive()


def test_close_while_a_callback_runs_waits_for_it(server: Server, subscriber: Subscriber) -> None:
    entered = threading.Event()
    release = threading.Event()
    returned = threading.Event()

    def slow(peers: list[str]) -> None:
        entered.set()
        release.wait(DEADLINE)
        returned.set()

    subscriber.on_peers(slow)
    assert entered.wait(DEADLINE)
    closer = threading.Thread(target=subscriber.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "close() returned while the callback was still running"
    release.set()
    closer.join(DEADLINE)
    assert not closer.is_alive()
    assert returned.is_set(), "close() returned before the running callback finished"


def test_other_python_threads_run_while_one_waits(server: Server, subscriber: Subscriber) -> None:
    # A wait holds no GIL: a pure-Python thread makes progress meanwhile.
    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        with pytest.raises(gopherdiscovery.TimeoutError):
            subscriber.wait_for(lambda p: p == ["never"], timeout=0.3)
        before = counter[0]
        eventually(lambda: counter[0] > before, what="the other thread to run")
    finally:
        stop.set()
        t.join()


def test_wait_for_timeout_says_what_it_saw(server: Server, subscriber: Subscriber) -> None:
    subscriber.wait_for(lambda p: True, DEADLINE)  # synced
    with pytest.raises(gopherdiscovery.TimeoutError) as info:
        subscriber.wait_for(lambda p: "x" in p, timeout=0.3)
    assert isinstance(info.value, TimeoutError)  # the built-in one too
    assert "within 0.3 s" in str(info.value) and "last: []" in str(info.value)


SCRIPT = textwrap.dedent(
    """
    import sys, gopherdiscovery
    # Nothing listens there: the wait can only end by a signal.
    sub = gopherdiscovery.Subscriber(publish=sys.argv[1], snapshot=sys.argv[2])
    try:
        print("waiting", flush=True)
        if sys.argv[3] == "changes":
            next(sub.changes())
        else:
            sub.wait_for(lambda peers: False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        sub.close()
    print("closed", flush=True)
    """
)


@pytest.mark.parametrize("how", ["changes", "wait_for"])
def test_ctrl_c_interrupts_a_blocking_wait(children: Children, url: Callable[[str], str], how: str) -> None:
    child = children.python("-c", SCRIPT, url("nobody-publish"), url("nobody-snapshot"), how)
    child.wait_line(lambda line: line == "waiting")
    child.proc.send_signal(signal.SIGINT)
    child.wait_line(lambda line: line == "interrupted", what="KeyboardInterrupt")
    code, err = child.finish()
    assert code == 0, err
    assert child.lines.items[-1] == "closed"


def _cycles(url: Callable[[str], str], settle: bool, grace: float = DEADLINE) -> None:
    """200 cycles of a server, a subscriber and a watching client, each with a
    dispatcher and an iterator; fails if threads or descriptors are left behind."""

    def cycle(i: int) -> None:
        u = lambda name: url(f"{name}-{i}")  # noqa: E731
        with Server(survey=u("s"), publish=u("p"), snapshot=u("n"), interval=0.2, deadline=0.1) as server, Subscriber(
            publish=server.urls.publish, snapshot=server.urls.snapshot
        ) as sub, Client(
            f"m{i}", survey=server.urls.survey, publish=server.urls.publish, snapshot=server.urls.snapshot
        ) as c:
            seen = Recorder()
            sub.on_peers(seen)  # starts a dispatcher thread
            c.on_event(seen)  # and another
            changes = sub.changes(timeout=DEADLINE)
            if settle:
                seen.wait_for(lambda p: p == [f"m{i}"], what="the member")
                assert next(changes) == [f"m{i}"]
                c.wait_for(lambda p: p == [f"m{i}"], DEADLINE)

    for i in range(10):  # warm up: NNG starts its thread pool on first use
        cycle(i)
    threads, fds, py_threads = os_threads(), open_fds(), threading.active_count()
    for i in range(10, 210):
        cycle(i)
    # Closed handles join their threads: nothing is left behind, however many cycles.
    eventually(lambda: threading.active_count() <= py_threads, what=f"Python threads back to {py_threads}: {thread_names()}")
    eventually(lambda: os_threads() <= threads, what=f"OS threads back to {threads} (now {os_threads()})")
    eventually(lambda: open_fds() <= fds, grace, what=f"descriptors back to {fds} (now {open_fds()})")


def test_create_and_close_200_times_leaks_no_thread_or_descriptor(url: Callable[[str], str]) -> None:
    _cycles(url, settle=True)


def test_closing_mid_connection_200_times_leaks_no_descriptor(url: Callable[[str], str]) -> None:
    _cycles(url, settle=False, grace=3.0)


def test_callbacks_run_on_one_python_thread_not_a_library_thread(server: Server, subscriber: Subscriber) -> None:
    names = Recorder()
    subscriber.on_peers(lambda peers: names(threading.current_thread().name))
    subscriber.on_event(lambda event: names(threading.current_thread().name))
    with Client("a", survey=server.urls.survey):
        names.wait_for(lambda n: True)
        subscriber.wait_for(lambda p: p == ["a"], DEADLINE)
    eventually(lambda: len(names.items) >= 3)
    assert len(set(names.items)) == 1
    assert names.items[0].startswith("gopherdiscovery-dispatch-")
