"""Service discovery on NNG: members answer surveys, subscribers get the peer list.

    import gopherdiscovery

    with gopherdiscovery.Client("http://10.0.0.1:8080", survey="tcp://127.0.0.1:40007"):
        with gopherdiscovery.Subscriber() as sub:
            for peers in sub.changes():
                print(peers)

A ``Server`` surveys its members every ``interval`` and publishes every change; a
``Client`` is a member; a ``Subscriber`` keeps a copy of the member set and hands it
to the application through callbacks (``on_peers``, ``on_event``), a blocking
iterator (``changes``), an async iterator (``changes_async``) or ``wait_for``.

Threads: the library's own threads (Rust) never run Python code. A subscriber's
updates are queued in Rust; callbacks run on one Python thread per subscriber, the
*dispatcher*, started at the first ``on_peers``/``on_event``. Blocking waits release
the GIL and come back every 50 ms to check for signals, so Ctrl-C interrupts them.
A callback that raises is logged (logger ``gopherdiscovery``) and delivery goes on.
``close()`` is idempotent and safe from any thread, including from a callback.

Authenticated meshes: give every ``Server``, ``Client`` and ``Subscriber`` the same
keyring, ``keyring=[key]`` (32-byte keys, primary first; ``generate_key()`` makes
one) or ``keyring_file=PATH`` (one base64 key per line, as for the CLI). Everything
is then signed, and what does not verify is dropped and counted in
``stats().auth``. ``auth="permissive"`` also accepts unsigned peers while a key is
rolled into a live mesh; ``mesh_label`` keeps two meshes that share a key apart.
The library's copies of the keys are zeroed when dropped.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Callable, Literal, Optional, TypeVar, Union

from . import _gopherdiscovery as _ext
from ._gopherdiscovery import (
    DEFAULT_PUBLISH_URL,
    DEFAULT_SNAPSHOT_URL,
    DEFAULT_SURVEY_URL,
    HISTOGRAM_BOUNDS_SECONDS,
    AddressInUseError,
    AuthStats,
    ClientStats,
    ClosedError,
    Error,
    Event,
    Histogram,
    InvalidMemberError,
    InvalidOptionError,
    InvalidUrlError,
    IoError,
    Member,
    ProtocolError,
    Server,
    ServerStats,
    SubscribedServer,
    ServerUrls,
    SubscriberStats,
    SurveyUrlStats,
    TimeoutError,
    TransportError,
    Update,
    WIRE_VERSION,
    __version__,
    generate_key,
    key_id,
    nng_version,
)

__all__ = [
    "DEFAULT_PUBLISH_URL",
    "DEFAULT_SNAPSHOT_URL",
    "DEFAULT_SURVEY_URL",
    "HISTOGRAM_BOUNDS_SECONDS",
    "AddressInUseError",
    "AsyncPeerChanges",
    "AuthMode",
    "AuthStats",
    "Client",
    "ClientStats",
    "ClosedError",
    "Error",
    "Event",
    "Histogram",
    "InvalidMemberError",
    "InvalidOptionError",
    "InvalidUrlError",
    "IoError",
    "Member",
    "PeerChanges",
    "ProtocolError",
    "Server",
    "ServerStats",
    "SubscribedServer",
    "ServerUrls",
    "State",
    "Subscriber",
    "SubscriberStats",
    "SurveyUrlStats",
    "TimeoutError",
    "TransportError",
    "Update",
    "WIRE_VERSION",
    "__version__",
    "generate_key",
    "key_id",
    "nng_version",
]

logger = logging.getLogger("gopherdiscovery")

State = Literal["syncing", "live", "stale"]
"""A subscriber's state: no snapshot yet, in step with the server, or no heartbeat lately."""

AuthMode = Literal["off", "permissive", "required"]
"""What is done with signatures: nothing, sign and accept unsigned input too
(counted; for rolling a key into a live mesh), or sign and accept only what verifies.
The default is "required" with a keyring, "off" without."""

_Keys = Iterable[Union[bytes, bytearray]]
_Path = Union[str, os.PathLike[str]]

_PeersCallback = TypeVar("_PeersCallback", bound=Callable[[list[str]], object])
_EventCallback = TypeVar("_EventCallback", bound=Callable[[Event], object])


def _timed_out(message: str) -> TimeoutError:
    return TimeoutError(errno.ETIMEDOUT, message)


def _deadline(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    if not timeout >= 0:  # also catches NaN
        raise InvalidOptionError(f"invalid option timeout: must be None or >= 0 seconds, got {timeout!r}")
    return time.monotonic() + timeout


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class PeerChanges(Iterator[list[str]]):
    """Blocking iterator of peer lists (see ``Subscriber.changes``).

    Yields the current list as soon as there is one, then each new list. Stops when
    no new list comes within ``timeout`` seconds (if given), or when the subscriber
    or the iterator is closed. Each wait releases the GIL; Ctrl-C interrupts it.
    """

    def __init__(self, cursor: _ext.Cursor, timeout: Optional[float]) -> None:
        self._cursor = cursor
        _deadline(timeout)  # validates
        self._timeout = timeout
        self._last: Optional[list[str]] = None

    def _step(self, update: Optional[Update]) -> Optional[list[str]]:
        """The list to yield for this update, or None to keep waiting."""
        if update is None or not update.synced:
            return None
        peers = update.peers
        if peers == self._last:
            return None
        self._last = peers
        return list(peers)

    def __iter__(self) -> PeerChanges:
        return self

    def __next__(self) -> list[str]:
        deadline = _deadline(self._timeout)
        while True:
            try:
                update = self._cursor.wait(_remaining(deadline))
            except ClosedError:
                raise StopIteration from None
            if update is None:  # timed out
                self.close()
                raise StopIteration
            peers = self._step(update)
            if peers is not None:
                return peers

    def close(self) -> None:
        """Ends the iteration; a wait in progress on another thread returns at once."""
        self._cursor.close()

    def __enter__(self) -> PeerChanges:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._cursor.close()


class AsyncPeerChanges(AsyncIterator[list[str]]):
    """``async for`` over peer lists (see ``Subscriber.changes_async``).

    Waits on the event loop itself, with no thread: the library writes a byte to
    a pipe of this iterator whenever there may be something new (and when the
    subscriber closes); the loop watches the pipe's read end (``add_reader``), then
    takes what is there without blocking. So any number of async watchers use no
    thread of asyncio's default pool. A cancelled wait closes the iterator.
    """

    def __init__(self, cursor: _ext.Cursor, timeout: Optional[float]) -> None:
        self._sync = PeerChanges(cursor, timeout)
        self._pipe: Optional[tuple[int, int]] = None
        # True while a coroutine waits on the pipe: then that coroutine closes it.
        self._waiting = False

    def __aiter__(self) -> AsyncPeerChanges:
        return self

    def _read_end(self) -> int:
        if self._pipe is None:
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._pipe = (r, w)
            self._sync._cursor.set_wakeup_fd(w)
        return self._pipe[0]

    async def __anext__(self) -> list[str]:
        sync = self._sync
        deadline = _deadline(sync._timeout)
        loop = asyncio.get_running_loop()
        # While this runs, the pipe is ours: close() from elsewhere only wakes us.
        self._waiting = True
        try:
            fd = self._read_end()
            while True:
                try:
                    update = sync._cursor.wait(0)
                except ClosedError:
                    raise StopAsyncIteration from None
                if update is not None:
                    peers = sync._step(update)
                    if peers is not None:
                        return peers
                    continue
                left = _remaining(deadline)
                if left == 0.0:
                    sync.close()
                    raise StopAsyncIteration
                woken: asyncio.Future[None] = loop.create_future()

                def wake(woken: asyncio.Future[None] = woken) -> None:
                    if not woken.done():
                        woken.set_result(None)

                loop.add_reader(fd, wake)
                try:
                    await asyncio.wait_for(woken, left)
                except asyncio.TimeoutError:
                    pass
                finally:
                    loop.remove_reader(fd)
                try:
                    while os.read(fd, 4096):
                        pass
                except BlockingIOError:
                    pass
        except StopAsyncIteration:
            raise
        except BaseException:
            # Cancelled (or worse): end the iteration, then let it through.
            sync.close()
            raise
        finally:
            self._waiting = False
            if sync._cursor.closed:
                self.close()

    async def aclose(self) -> None:
        """Ends the iteration."""
        self.close()

    def close(self) -> None:
        """Ends the iteration (from any thread: a wait in progress ends at once)."""
        # The library forgets the pipe (under its lock) before the pipe closes.
        self._sync.close()
        pipe = self._pipe
        if pipe is None:
            return
        if self._waiting:
            # Wake the waiting coroutine; it sees the closed cursor and closes the pipe.
            try:
                os.write(pipe[1], b"\0")
            except BlockingIOError:
                pass
            return
        self._pipe = None
        for end in pipe:
            os.close(end)

    def __del__(self) -> None:
        self.close()


class _Dispatcher:
    """The Python thread that runs one subscriber's callbacks, in registration order.

    Each callback has its own cursor, made when it is added, so it sees a consistent
    stream from that moment: ``on_peers`` callbacks get the current list first,
    ``on_event`` callbacks a "joined" event for each member present. A master cursor
    (no events) wakes the thread; then each callback's cursor is read without waiting.
    """

    _numbers = itertools.count(1)

    def __init__(self, core: _ext.SubscriberCore) -> None:
        self._core = core
        self._master = core.cursor(events=False)
        self._lock = threading.Lock()
        # [callback, cursor, last peers given (on_peers only)]
        self._peers: list[tuple[Callable[[list[str]], object], _ext.Cursor, list[Optional[list[str]]]]] = []
        self._events: list[tuple[Callable[[Event], object], _ext.Cursor]] = []
        self._thread = threading.Thread(
            target=self._run, name=f"gopherdiscovery-dispatch-{next(self._numbers)}", daemon=True
        )
        self._thread.start()

    def add_peers(self, callback: Callable[[list[str]], object]) -> None:
        with self._lock:
            self._peers.append((callback, self._core.cursor(replay=True, events=False), [None]))
        self._core.poke()

    def add_event(self, callback: Callable[[Event], object]) -> None:
        with self._lock:
            self._events.append((callback, self._core.cursor(replay=True)))
        self._core.poke()

    def _run(self) -> None:
        try:
            while True:
                self._master.wait()
                with self._lock:
                    peers_callbacks = list(self._peers)
                    event_callbacks = list(self._events)
                for on_event, cursor in event_callbacks:
                    update = cursor.wait(0)
                    if update is None:
                        continue
                    if update.lost:
                        logger.warning("%d events dropped before on_event callback %r took them", update.lost, on_event)
                    for event in update.events:
                        if self._master.closed:
                            return
                        _call(on_event, event)
                for on_peers, cursor, last in peers_callbacks:
                    update = cursor.wait(0)
                    if update is None or not update.synced:
                        continue
                    peers = update.peers
                    if peers == last[0]:
                        continue
                    last[0] = peers
                    if self._master.closed:
                        return
                    _call(on_peers, list(peers))
        except ClosedError:
            return
        except BaseException:  # a bug here must not pass silently
            logger.exception("the gopherdiscovery dispatcher stopped")

    def stop(self) -> None:
        """Stops the thread; waits for a callback in progress unless called from one."""
        self._master.close()
        with self._lock:
            for entry in self._peers:
                entry[1].close()
            for _, cursor in self._events:
                cursor.close()
        if threading.current_thread() is not self._thread:
            self._thread.join()


_T = TypeVar("_T")


def _call(callback: Callable[[_T], object], arg: _T) -> None:
    try:
        callback(arg)
    except Exception:
        logger.exception("callback %r raised; delivery goes on", callback)

# Every open subscriber and client, closed at interpreter exit so that no
# dispatcher thread is still waiting in Rust when Python finalizes.
_live: weakref.WeakSet[_Watching] = weakref.WeakSet()  # noqa: F821 (annotation only)


@atexit.register
def _close_all() -> None:
    for handle in list(_live):
        handle.close()


class _Watching:
    """What a subscriber offers; shared by ``Subscriber`` and a watching ``Client``."""

    _subscriber: Optional[_ext.SubscriberCore]
    _dispatcher: Optional[_Dispatcher]
    _lock: threading.Lock
    _closed: bool

    def _init_watching(self, subscriber: Optional[_ext.SubscriberCore]) -> None:
        self._subscriber = subscriber
        self._dispatcher = None
        self._lock = threading.Lock()
        self._closed = False
        _live.add(self)

    def _sub(self) -> _ext.SubscriberCore:
        if self._subscriber is None:
            raise InvalidOptionError(
                "invalid option publish: this client does not watch; "
                "pass publish= (and snapshot=) to Client() to get peers, members and callbacks"
            )
        return self._subscriber

    @property
    def peers(self) -> list[str]:
        """The peer names now, sorted."""
        return self._sub().peers

    @property
    def members(self) -> list[Member]:
        """The members now (name, metadata, incarnation), sorted by name."""
        return self._sub().members

    @property
    def state(self) -> State:
        """One of "syncing" (no snapshot yet), "live" or "stale" (no heartbeat lately)."""
        return self._sub().state

    def subscriber_stats(self) -> SubscriberStats:
        """State, view, connections and counters of the subscriber now."""
        return self._sub().stats()

    @property
    def servers(self) -> list[SubscribedServer]:
        """Every configured server's status, in configuration order: publish and
        snapshot URLs, epoch, seq, state, warming, members, last publication age
        (seconds), resyncs. With several servers the view is their merge; the
        state is "stale" only when no server is live."""
        return self._sub().servers

    def _dispatch(self) -> _Dispatcher:
        sub = self._sub()
        with self._lock:
            if self._closed:
                raise ClosedError(f"the {type(self).__name__.lower()} is closed")
            if self._dispatcher is None:
                self._dispatcher = _Dispatcher(sub)
            return self._dispatcher

    def on_peers(self, callback: _PeersCallback) -> _PeersCallback:
        """Calls ``callback(peers)`` with the current sorted peer list (once there is
        one) and again each time the list changes, on the dispatcher thread.
        Returns ``callback``, so it also works as a decorator."""
        self._dispatch().add_peers(callback)
        return callback

    def on_event(self, callback: _EventCallback) -> _EventCallback:
        """Calls ``callback(event)`` for every change, on the dispatcher thread: first
        a "joined" event for each member present now, then each joined/left/updated
        event in order. Returns ``callback``, so it also works as a decorator."""
        self._dispatch().add_event(callback)
        return callback

    def changes(self, timeout: Optional[float] = None) -> PeerChanges:
        """A blocking iterator of peer lists: the current list as soon as there is
        one, then each new list. It stops when no new list comes within ``timeout``
        seconds (None: never) and when the subscriber closes."""
        return PeerChanges(self._sub().cursor(replay=True, events=False), timeout)

    def changes_async(self, timeout: Optional[float] = None) -> AsyncPeerChanges:
        """``changes()`` for ``async for``; waits on the event loop itself (a pipe the
        library writes to), so it holds no thread while it waits."""
        return AsyncPeerChanges(self._sub().cursor(replay=True, events=False), timeout)

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: Optional[float] = None) -> list[str]:
        """Blocks until ``predicate(peers)`` is true, checking the current list and then
        every update (metadata updates too); returns that list. Raises
        ``gopherdiscovery.TimeoutError`` after ``timeout`` seconds and ``ClosedError``
        when the subscriber closes meanwhile."""
        deadline = _deadline(timeout)
        cursor = self._sub().cursor(replay=True, events=False)
        last: Optional[list[str]] = None
        try:
            while True:
                update = cursor.wait(_remaining(deadline))
                if update is None:
                    raise _timed_out(f"no peer list satisfied the predicate within {timeout} s (last: {last!r})")
                if update.synced:
                    last = update.peers
                    if predicate(list(last)):
                        return last
        finally:
            cursor.close()

    def _close_watching(self) -> None:
        with self._lock:
            self._closed = True
            dispatcher = self._dispatcher
        if self._subscriber is not None:
            self._subscriber.close()
        if dispatcher is not None:
            dispatcher.stop()

    def close(self) -> None:
        raise NotImplementedError

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _once(keyring: Optional[_Keys]) -> Optional[_Keys]:
    """``keyring`` readable twice (a watching client gives it to its subscriber
    too): an iterator becomes a list (of one key more than a keyring takes at
    most, so the library refuses an endless one); a single ``bytes`` stays as it
    is, for the library to refuse with its message."""
    if keyring is None or isinstance(keyring, (bytes, bytearray, str, list, tuple)):
        return keyring
    return list(itertools.islice(keyring, _ext.MAX_KEYS + 1))


def _servers(servers: Optional[Sequence[tuple[str, str]]]) -> Optional[list[tuple[str, str]]]:
    return None if servers is None else [(p, s) for p, s in servers]


def _check_servers(servers: Optional[Sequence[tuple[str, str]]], one_server: bool) -> None:
    if servers is not None and (one_server or len(servers) == 0):
        raise InvalidOptionError(
            "invalid option servers: give at least one (publish, snapshot) pair, and not with publish= or snapshot="
        )


class Subscriber(_Watching):
    """Keeps a copy of the member set: subscribes to ``publish``, fetches a snapshot
    from ``snapshot`` (None: a legacy publisher, every message is the full list),
    then applies every change. With ``servers=[(publish, snapshot), ...]`` it
    follows every server and merges them: a member is in the view while some live
    server holds it (``servers`` excludes ``publish`` and ``snapshot``).

    Read it with ``peers``, ``members`` and ``state``; follow it with ``on_peers``,
    ``on_event``, ``changes()``, ``changes_async()`` or ``wait_for()``. ``close()`` (or
    the end of a ``with`` block) stops it; after ``close()`` returns no callback runs
    (unless it was called from a callback, which returns at once).

    With ``keyring=[key, ...]`` (32-byte keys, primary first) or ``keyring_file=``
    (one base64 key per line), it takes only publications and snapshots that
    verify and signs its snapshot requests; ``auth`` and ``mesh_label`` as for
    ``Server``. A subscriber whose keys the servers do not share gets no view
    (its state stays "syncing") and counts the publications it drops in
    ``stats().auth``: check the keyring.
    """

    def __init__(
        self,
        publish: str = DEFAULT_PUBLISH_URL,
        snapshot: Optional[str] = DEFAULT_SNAPSHOT_URL,
        *,
        servers: Optional[Sequence[tuple[str, str]]] = None,
        keyring: Optional[_Keys] = None,
        keyring_file: Optional[_Path] = None,
        auth: Optional[AuthMode] = None,
        mesh_label: str = "",
    ) -> None:
        self._init_watching(None)
        _check_servers(servers, publish != DEFAULT_PUBLISH_URL or snapshot != DEFAULT_SNAPSHOT_URL)
        self._subscriber = _ext.SubscriberCore(
            publish,
            snapshot,
            _servers(servers),
            keyring=keyring,
            keyring_file=keyring_file,
            auth=auth,
            mesh_label=mesh_label,
        )
        self._publish = servers[0][0] if servers else publish

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    def stats(self) -> SubscriberStats:
        """State, view, connections and counters now (``subscriber_stats()``)."""
        return self.subscriber_stats()

    def set_keyring(self, keyring: Optional[_Keys] = None, *, keyring_file: Optional[_Path] = None) -> None:
        """Replaces the keyring (``keyring=[key, ...]`` or ``keyring_file=``; the mode
        and mesh label stay). Raises ``InvalidOptionError`` for a subscriber made
        without a keyring."""
        self._sub().set_keyring(keyring, keyring_file=keyring_file)

    def close(self) -> None:
        """Stops the subscriber and its dispatcher. Idempotent; safe from any thread,
        including from inside a callback."""
        self._close_watching()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.state
        return f"<Subscriber publish={self._publish!r} {state}>"


class Client(_Watching):
    """A member of the mesh: answers the surveys of the servers at ``survey`` (one
    URL or a list) with its ``name`` (its service address, e.g.
    ``"http://10.0.0.1:8080"``) and ``metadata`` (str to str). ``service=`` is
    accepted as an alias of ``name``.

    With ``publish=`` (and ``snapshot=``), or ``servers=``, as for ``Subscriber``, it also watches the
    member set and offers everything a ``Subscriber`` does. ``close()`` (or the end
    of a ``with`` block) leaves: servers see the member go at once (reason "closed").

    With ``keyring=[key, ...]`` (32-byte keys, primary first) or ``keyring_file=``
    (one base64 key per line), it answers only surveys that verify and signs its
    answers (and a watching client's subscriber uses the same keyring); ``auth``
    and ``mesh_label`` as for ``Server``.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        survey: str | Sequence[str] = DEFAULT_SURVEY_URL,
        metadata: Optional[Mapping[str, str]] = None,
        *,
        publish: Optional[str] = None,
        snapshot: Optional[str] = DEFAULT_SNAPSHOT_URL,
        service: Optional[str] = None,
        servers: Optional[Sequence[tuple[str, str]]] = None,
        keyring: Optional[_Keys] = None,
        keyring_file: Optional[_Path] = None,
        auth: Optional[AuthMode] = None,
        mesh_label: str = "",
    ) -> None:
        self._init_watching(None)
        if (name is None) == (service is None):
            raise InvalidOptionError(
                "invalid option name: give the member's name once (service= is an alias of name=)"
            )
        service = name if name is not None else service
        assert service is not None
        _check_servers(servers, publish is not None or snapshot != DEFAULT_SNAPSHOT_URL)
        if publish is None and snapshot != DEFAULT_SNAPSHOT_URL:
            raise InvalidOptionError("invalid option snapshot: given without publish; pass publish= too to watch")
        self._service = service
        keyring = _once(keyring)
        if servers:
            self._subscriber = _ext.SubscriberCore(
                servers=_servers(servers),
                keyring=keyring,
                keyring_file=keyring_file,
                auth=auth,
                mesh_label=mesh_label,
            )
        elif publish is not None:
            self._subscriber = _ext.SubscriberCore(
                publish, snapshot, keyring=keyring, keyring_file=keyring_file, auth=auth, mesh_label=mesh_label
            )
        try:
            self._client = _ext.ClientCore(
                service, survey, metadata, keyring=keyring, keyring_file=keyring_file, auth=auth, mesh_label=mesh_label
            )
        except BaseException:
            self._close_watching()
            raise

    @property
    def member(self) -> Member:
        """This member as announced: name, metadata, incarnation."""
        return self._client.member

    @property
    def connections(self) -> int:
        """Number of live connections to servers."""
        return self._client.connections

    @property
    def watching(self) -> bool:
        """True when made with ``publish=`` (peers, members and callbacks work)."""
        return self._subscriber is not None

    def stats(self) -> ClientStats:
        """Connections, surveys answered, announces sent and the last survey's
        age, in all and per survey URL (``survey_urls``): shows a server that does
        not survey this member. A watching client's subscriber: ``subscriber_stats()``."""
        return self._client.stats()

    def set_metadata(self, metadata: Mapping[str, str]) -> None:
        """Replaces the metadata; servers publish an "updated" event at once."""
        self._client.set_metadata(metadata)

    def set_keyring(self, keyring: Optional[_Keys] = None, *, keyring_file: Optional[_Path] = None) -> None:
        """Replaces the keyring (``keyring=[key, ...]`` or ``keyring_file=``; the mode
        and mesh label stay), a watching client's subscriber's too: answers are
        signed with the new primary from the next survey on. Raises
        ``InvalidOptionError`` for a client made without a keyring."""
        keyring = _once(keyring)
        self._client.set_keyring(keyring, keyring_file=keyring_file)
        if self._subscriber is not None:
            self._subscriber.set_keyring(keyring, keyring_file=keyring_file)

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    def close(self) -> None:
        """Leaves the mesh (and stops watching). Idempotent; safe from any thread,
        including from inside a callback."""
        self._close_watching()
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client name={self._service!r}{' closed' if self._closed else ''}>"
