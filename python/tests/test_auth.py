"""Authenticated meshes: a keyring on every handle; members and subscribers with the
right key get in, those with a wrong key, another mesh label or no key never do and
their drops are counted; "permissive" admits unsigned peers; a key is rolled in three
steps without a membership event; members from Python, C and the CLI join one mesh
run by a CLI server with a keyring file."""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import DEADLINE, ROOT, Children, Recorder, c_program, event_is, eventually

import gopherdiscovery
from gopherdiscovery import AuthStats, Client, InvalidOptionError, Server, Subscriber, generate_key, key_id

CLI = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "gopherdiscovery"
FAST = {"interval": 0.2, "deadline": 0.1}
# Rounds, surveys answered and publications to wait for when a test needs "a few
# more of each" (it waits for them to happen; it never sleeps).
ROUNDS = 4


def write_keyring(path: Path, *keys: bytes) -> Path:
    """A keyring file as the CLI reads it: a comment, then one base64 key per line."""
    path.write_text("# test keyring, primary first\n\n" + "".join(base64.b64encode(k).decode() + "\n" for k in keys))
    path.chmod(0o600)
    return path


@pytest.fixture
def key() -> bytes:
    return generate_key()


@pytest.fixture
def keyed_server(url: Callable[[str], str], key: bytes) -> Iterator[Server]:
    with Server(survey=url("survey"), publish=url("publish"), snapshot=url("snapshot"), keyring=[key], **FAST) as s:
        yield s


def names(members: list[gopherdiscovery.Member]) -> list[str]:
    return [m.name for m in members]


def more_rounds(server: Server, n: int = ROUNDS) -> None:
    """Waits until the server completed ``n`` more survey rounds."""
    start = server.stats().rounds
    eventually(lambda: server.stats().rounds >= start + n, what=f"{n} more survey rounds")


def test_generate_key_and_key_id() -> None:
    a, b = generate_key(), generate_key()
    assert isinstance(a, bytes) and len(a) == 32 and len(b) == 32
    assert a != b
    # The id of the key 00 01 .. 1f, as in docs/PROTOCOL.md and the Rust tests.
    assert key_id(bytes(range(32))) == "03defadb"
    assert key_id(bytearray(range(32))) == "03defadb"
    assert re.fullmatch("[0-9a-f]{8}", key_id(a))
    assert key_id(a) != key_id(b)
    with pytest.raises(InvalidOptionError, match="a key must be 32 bytes, not 31") as info:
        key_id(bytes(31))
    assert info.value.option == "keyring"
    with pytest.raises(InvalidOptionError, match="the key: must be bytes"):
        key_id("00" * 32)  # type: ignore[arg-type]


def test_right_key_joins_wrong_key_other_label_or_no_key_never_do(
    keyed_server: Server, key: bytes, url: Callable[[str], str], tmp_path: Path
) -> None:
    server = keyed_server
    survey = server.urls.survey
    assert server.auth_mode == "required"
    events = Recorder()
    keyring_file = write_keyring(tmp_path / "keyring", key)
    with Subscriber(publish=server.urls.publish, snapshot=server.urls.snapshot, keyring_file=keyring_file) as sub:
        sub.on_event(events)
        with Client("wrong-key", survey=survey, keyring=[generate_key()]) as wrong, Client(
            "no-key", survey=survey
        ), Client("other-label", survey=survey, keyring=[key], mesh_label="another mesh") as other, Client(
            "good", survey=survey, keyring=[key]
        ) as good:
            assert sub.wait_for(lambda p: p == ["good"], DEADLINE) == ["good"]
            # Each refused member is counted under its reason, at the server and at
            # the member (whose surveys do not verify either).
            eventually(lambda: server.stats().auth.unknown_key > 0, what="the server counting unknown_key")
            eventually(lambda: server.stats().auth.unsigned > 0, what="the server counting unsigned")
            eventually(lambda: server.stats().auth.bad_mac > 0, what="the server counting bad_mac")
            eventually(lambda: wrong.stats().auth.unknown_key > 0, what="the wrong-key client counting unknown_key")
            eventually(lambda: other.stats().auth.bad_mac > 0, what="the other-label client counting bad_mac")
            # A few more rounds in which the refused members answer and are refused.
            more_rounds(server)
            assert names(server.members) == ["good"]
            assert sub.peers == ["good"]
            assert names(sub.members) == ["good"]
            assert server.stats().joined == 1
            assert good.stats().surveys_answered > 0
            assert wrong.stats().surveys_answered == 0
            assert other.stats().surveys_answered == 0
            stats = server.stats()
            assert stats.challenges > 0  # a member is admitted by answering a challenge survey
            assert stats.auth.replayed == 0 and stats.auth.unsigned_accepted == 0
            assert isinstance(stats.auth, AuthStats)
            assert [kid for kid, _ in server.key_use()] == [key_id(key)]
            assert server.key_use()[0][1] > 0
            assert sub.stats().auth.unknown_key == 0 and sub.stats().auth.bad_mac == 0
    events.wait_for(event_is("left", "good", "closed"), what="good leaving")
    assert [(e.kind, e.member.name) for e in events.items] == [("joined", "good"), ("left", "good")]


def test_permissive_admits_unsigned_members_and_counts_them(url: Callable[[str], str], key: bytes) -> None:
    with Server(
        survey=url("survey"), publish=url("publish"), snapshot=url("snapshot"), keyring=[key], auth="permissive", **FAST
    ) as server:
        assert server.auth_mode == "permissive"
        urls = server.urls
        # A subscriber without a key too: a permissive server answers its unsigned
        # snapshot requests (the mesh is being moved onto a key).
        with Subscriber(publish=urls.publish, snapshot=urls.snapshot, keyring=[key]) as keyed_sub, Subscriber(
            publish=urls.publish, snapshot=urls.snapshot
        ) as keyless_sub, Client("keyless", survey=urls.survey), Client(
            "keyed", survey=urls.survey, keyring=[key]
        ), Client("wrong-key", survey=urls.survey, keyring=[generate_key()]):
            both = ["keyed", "keyless"]
            assert keyed_sub.wait_for(lambda p: p == both, DEADLINE) == both
            assert keyless_sub.wait_for(lambda p: p == both, DEADLINE) == both
            eventually(lambda: server.stats().auth.unsigned_accepted > 0, what="unsigned_accepted rising")
            # Permissive is not off: what is signed must still verify.
            eventually(lambda: server.stats().auth.unknown_key > 0, what="the wrong key refused")
            more_rounds(server)
            assert names(server.members) == both
            assert server.stats().auth.unsigned == 0


def test_subscriber_with_a_wrong_key_gets_no_view(keyed_server: Server, key: bytes) -> None:
    urls = keyed_server.urls
    with Client("a", survey=urls.survey, keyring=[key]), Subscriber(
        publish=urls.publish, snapshot=urls.snapshot, keyring=[key]
    ) as right, Subscriber(publish=urls.publish, snapshot=urls.snapshot, keyring=[generate_key()]) as wrong:
        got = Recorder()
        wrong.on_peers(got)
        assert right.wait_for(lambda p: p == ["a"], DEADLINE) == ["a"]
        # Its publications come with a key id it does not know; its snapshot
        # requests, signed with its own key, are refused by the server.
        eventually(lambda: wrong.stats().auth.unknown_key >= 3, what="the wrong-key subscriber counting unknown_key")
        eventually(lambda: keyed_server.stats().auth.unknown_key > 0, what="the server refusing its snapshot requests")
        assert wrong.state == "syncing"
        assert wrong.peers == [] and wrong.members == []
        stats = wrong.stats()
        assert stats.members == 0 and stats.publications == 0
        assert got.items == []  # on_peers is called once there is a view: never
        assert right.stats().auth.unknown_key == 0


def test_key_rotation_in_three_steps_moves_no_member(url: Callable[[str], str], tmp_path: Path) -> None:
    k1, k2 = generate_key(), generate_key()
    with Server(survey=url("survey"), publish=url("publish"), snapshot=url("snapshot"), keyring=[k1], **FAST) as server:
        urls = server.urls
        events = Recorder()
        with Subscriber(publish=urls.publish, snapshot=urls.snapshot, keyring=[k1]) as sub, Client(
            "member", survey=urls.survey, publish=urls.publish, snapshot=urls.snapshot, keyring=[k1]
        ) as member:
            assert sub.wait_for(lambda p: p == ["member"], DEADLINE) == ["member"]
            assert member.wait_for(lambda p: p == ["member"], DEADLINE) == ["member"]
            sub.on_event(events)
            events.wait_for(event_is("joined", "member"), what="the replayed join")

            def traffic() -> None:
                """A few more rounds, surveys answered and publications taken by each."""
                answered = member.stats().surveys_answered
                seen = sub.stats().publications
                watched = member.subscriber_stats().publications
                more_rounds(server)
                eventually(lambda: member.stats().surveys_answered >= answered + ROUNDS, what="surveys answered")
                eventually(lambda: sub.stats().publications >= seen + ROUNDS, what="publications taken")
                eventually(lambda: member.subscriber_stats().publications >= watched + ROUNDS, what="publications watched")

            # 1. The new key as secondary everywhere (k1 still signs).
            for handle in (server, member, sub):
                handle.set_keyring([k1, k2])
            traffic()
            # 2. The new key primary everywhere: k2 signs, k1 still verifies.
            for handle in (server, member, sub):
                handle.set_keyring([k2, k1])
            traffic()
            use = dict(server.key_use())
            assert list(use) == [key_id(k2), key_id(k1)]
            # Nothing signs with k1 any more: its count stops while k2's rises.
            traffic()
            after = dict(server.key_use())
            assert after[key_id(k1)] == use[key_id(k1)]
            assert after[key_id(k2)] > use[key_id(k2)]
            # 3. The old key removed everywhere (the server's from a keyring file).
            server.set_keyring(keyring_file=write_keyring(tmp_path / "keyring", k2))
            member.set_keyring([k2])
            sub.set_keyring([k2])
            traffic()
            assert [kid for kid, _ in server.key_use()] == [key_id(k2)]

            assert sub.peers == ["member"] and member.peers == ["member"]
            assert sub.state == "live" and member.state == "live"
            assert [(e.kind, e.member.name) for e in events.items] == [("joined", "member")]
            stats = server.stats()
            assert (stats.joined, stats.left_closed, stats.left_timeout, stats.restarted) == (1, 0, 0, 0)
            # Not one message refused, anywhere, during the rotation.
            for who, auth in [
                ("server", stats.auth),
                ("member", member.stats().auth),
                ("member's subscriber", member.subscriber_stats().auth),
                ("subscriber", sub.stats().auth),
            ]:
                assert (auth.bad_mac, auth.unknown_key, auth.unsigned, auth.replayed) == (0, 0, 0, 0), (who, auth)


def test_watching_client_takes_a_keyring_given_as_an_iterator(keyed_server: Server, key: bytes) -> None:
    # The client and its subscriber both need the keys: an iterator is read once.
    urls = keyed_server.urls
    with Client(
        "a", survey=urls.survey, publish=urls.publish, snapshot=urls.snapshot, keyring=(k for k in [key])
    ) as watcher:
        assert watcher.wait_for(lambda p: p == ["a"], DEADLINE) == ["a"]
        watcher.set_keyring(iter([key, generate_key()]))  # a new key as secondary
        more_rounds(keyed_server)
        assert watcher.peers == ["a"]
        assert watcher.stats().auth == watcher.subscriber_stats().auth  # nothing dropped by either
        assert watcher.stats().auth.unknown_key == 0


def test_member_example_with_a_keyring_file_from_the_environment(
    keyed_server: Server, key: bytes, children: Children, tmp_path: Path
) -> None:
    urls = keyed_server.urls
    keyring = write_keyring(tmp_path / "keyring", key)
    member = children.start(
        sys.executable, str(ROOT / "examples" / "python" / "member.py"), "--name", "http://127.0.0.1:8003",
        "--survey", urls.survey, "--publish", urls.publish, "--snapshot", urls.snapshot,
        env=dict(os.environ, PYTHONUNBUFFERED="1", GOPHERDISCOVERY_KEYRING_FILE=str(keyring)),
    )  # fmt: skip
    member.wait_line(lambda line: line == "joined http://127.0.0.1:8003")
    # Its own subscriber, with the same keyring, sees it.
    member.wait_line(lambda line: line.startswith("peers http://127.0.0.1:8003;"), what="its own peer list")
    assert names(keyed_server.members) == ["http://127.0.0.1:8003"]


def handle_factories(url: Callable[[str], str]) -> dict[str, Callable[..., Any]]:
    return {
        "server": lambda **kw: Server(survey=url("s"), publish=url("p"), snapshot=url("n"), **kw),
        "client": lambda **kw: Client("a", survey=url("s"), **kw),
        "watching client": lambda **kw: Client("a", survey=url("s"), publish=url("p"), snapshot=url("n"), **kw),
        "subscriber": lambda **kw: Subscriber(publish=url("p"), snapshot=url("n"), **kw),
    }


KEY = bytes(range(32))


def not_base64(path: Path) -> Path:
    path.write_text("# a comment, then a line that is not a key\nnot base64!\n")
    return path


@pytest.mark.parametrize("handle", ["server", "client", "watching client", "subscriber"])
@pytest.mark.parametrize(
    ("make_kwargs", "option", "message"),
    [
        (lambda d: {"keyring": [KEY, bytes(31)]}, "keyring", "invalid option keyring: key 2: a key must be 32 bytes, not 31"),
        (
            lambda d: {"keyring": [KEY], "keyring_file": write_keyring(d / "k", KEY)},
            "keyring",
            "invalid option keyring: give keyring or keyring_file, not both",
        ),
        (lambda d: {"keyring_file": d / "missing"}, "keyring_file", "invalid option keyring_file: cannot read "),
        (
            lambda d: {"keyring_file": str(not_base64(d / "bad"))},
            "keyring_file",
            "bad: line 2: not a base64 key",
        ),
        (lambda d: {"keyring": [KEY], "auth": "on"}, "auth", '"on": must be off, permissive or required'),
        (lambda d: {"auth": "required"}, "auth", "invalid option auth: required needs a keyring"),
        (lambda d: {"auth": "permissive"}, "auth", "invalid option auth: permissive needs a keyring"),
        (lambda d: {"keyring": KEY}, "keyring", "must be a list of keys, primary first (keyring=[key]), not one bytes"),
        (lambda d: {"keyring": ["00" * 32]}, "keyring", "key 1: must be bytes (32 raw bytes), not str"),
        (lambda d: {"keyring": []}, "keyring", "invalid option keyring: no key"),
        (lambda d: {"keyring": [KEY, KEY]}, "keyring", "key 2 (id 03defadb) is given twice"),
        (lambda d: {"keyring": iter(generate_key, None)}, "keyring", "invalid option keyring: more than 64 keys"),
        (lambda d: {"keyring": [KEY], "mesh_label": "a\nb"}, "mesh_label", "has a control character"),
    ],
    ids=[
        "31-byte key",
        "keyring and keyring_file",
        "missing keyring_file",
        "keyring_file not base64",
        "auth on",
        "required without keys",
        "permissive without keys",
        "one bytes, not a list",
        "str key",
        "no key",
        "a key twice",
        "endless iterator",
        "label with newline",
    ],
)
def test_invalid_auth_options(
    url: Callable[[str], str],
    tmp_path: Path,
    handle: str,
    make_kwargs: Callable[[Path], dict[str, Any]],
    option: str,
    message: str,
) -> None:
    make = handle_factories(url)[handle]
    with pytest.raises(InvalidOptionError) as info:
        make(**make_kwargs(tmp_path))
    assert message in str(info.value)
    assert info.value.option == option
    assert isinstance(info.value, ValueError)


def test_set_keyring_refusals(url: Callable[[str], str], key: bytes) -> None:
    for name, make in handle_factories(url).items():
        with make() as keyless:
            with pytest.raises(InvalidOptionError, match="started without a keyring") as info:
                keyless.set_keyring([key])
            assert info.value.option == "keyring", name
        with make(keyring=[key]) as keyed:
            with pytest.raises(InvalidOptionError, match="give the new keyring or keyring_file"):
                keyed.set_keyring()
            with pytest.raises(InvalidOptionError, match="key 1: a key must be 32 bytes, not 5"):
                keyed.set_keyring([b"short"])
            keyed.set_keyring([generate_key(), key])
        with pytest.raises(gopherdiscovery.ClosedError):
            keyed.set_keyring([key])


def test_auth_stats_values() -> None:
    with Server(survey="tcp://127.0.0.1:0", publish="tcp://127.0.0.1:0", snapshot="tcp://127.0.0.1:0") as off:
        assert off.auth_mode == "off"
        assert off.key_use() == []
        auth = off.stats().auth
        assert auth == off.stats().auth  # compared by value
    assert isinstance(auth, AuthStats)
    fields = ["bad_mac", "unknown_key", "unsigned", "replayed", "stale_survey", "wrong_connection", "unsigned_accepted"]
    assert [getattr(auth, f) for f in fields] == [0] * 7
    assert repr(auth) == (
        "AuthStats(bad_mac=0, unknown_key=0, unsigned=0, replayed=0, stale_survey=0, wrong_connection=0, "
        "unsigned_accepted=0)"
    )
    with pytest.raises(AttributeError):
        auth.bad_mac = 1  # type: ignore[misc]


def test_every_language_joins_one_mesh_run_by_a_cli_server_with_a_keyring_file(
    children: Children, url: Callable[[str], str], tmp_path: Path
) -> None:
    """A CLI server with a keyring file; members from Python (``keyring=``), C
    (``keys``/``keys_count``) and the CLI (``--keyring-file``, and the environment:
    ``GOPHERDISCOVERY_KEYRING_FILE``, ``GOPHERDISCOVERY_KEY``); a Python subscriber
    with ``keyring_file=`` sees them all, and not a member without the key. (Rust
    members with a key: the Rust tests; examples/rust/member.rs takes no key.)"""
    assert CLI.is_file(), f"{CLI} is missing: run `cargo build` in {ROOT} (python/run-tests.sh does)"
    key = generate_key()
    key_b64 = base64.b64encode(key).decode()
    keyring = write_keyring(tmp_path / "keyring", key)
    c_member = c_program(tmp_path, "python/tests/c/auth_member.c")
    # No key from this test's own environment leaks into a child's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOPHERDISCOVERY_")}
    survey, publish, snapshot = url("survey"), url("publish"), url("snapshot")

    server = children.start(
        str(CLI), "serve", "--survey", survey, "--publish", publish, "--snapshot", snapshot,
        "--interval", "200", "--deadline", "100", "--keyring-file", str(keyring), env=env,
    )  # fmt: skip
    server.wait_line(lambda line: line.startswith("serving "), what="the server's first line")
    cli = [
        children.start(str(CLI), "join", "--name", "cli-file", "--survey", survey, "--keyring-file", str(keyring), env=env),
        children.start(
            str(CLI), "join", "--name", "cli-env-file", "--survey", survey,
            env=dict(env, GOPHERDISCOVERY_KEYRING_FILE=str(keyring)),
        ),
        children.start(
            str(CLI), "join", "--name", "cli-env-key", "--survey", survey, env=dict(env, GOPHERDISCOVERY_KEY=key_b64)
        ),
    ]  # fmt: skip
    c = children.start(str(c_member), "c", survey, env=dict(env, GD_TEST_KEY_HEX=key.hex()))
    c.wait_line(lambda line: line == "joined c", what="the C member's join")
    everyone = ["c", "cli-env-file", "cli-env-key", "cli-file", "py"]
    events = Recorder()
    with Client("no-key", survey=survey), Client("py", survey=survey, keyring=[key]) as py, Subscriber(
        publish=publish, snapshot=snapshot, keyring_file=keyring
    ) as sub:
        sub.on_event(events)
        assert sub.wait_for(lambda p: p == everyone, DEADLINE) == everyone
        assert sub.state == "live"
        # The keyless member had as many surveys as the others: it never got in.
        answered = py.stats().surveys_answered
        eventually(lambda: py.stats().surveys_answered >= answered + ROUNDS, what="more surveys")
        assert sub.peers == everyone
        assert "no-key" not in [e.member.name for e in events.items]
        auth = sub.stats().auth
        assert (auth.bad_mac, auth.unknown_key, auth.unsigned) == (0, 0, 0)
    # No key on a command line, where `ps` shows it.
    for child in [server, *cli, c]:
        cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
        assert key_b64.encode() not in cmdline and key.hex().encode() not in cmdline
