"""Bad input gets the right exception, with a message that names the problem."""

from __future__ import annotations

import errno
from typing import Callable

import pytest

import gopherdiscovery
from gopherdiscovery import Client, Server, Subscriber


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("nonsense", "expected scheme://address"),
        ("foo://127.0.0.1:1", "foo://127.0.0.1:1"),
        ("", "empty URL"),
    ],
)
def test_bad_url(bad: str, problem: str) -> None:
    with pytest.raises(gopherdiscovery.InvalidUrlError, match="invalid URL") as info:
        Server(survey=bad)
    e = info.value
    assert isinstance(e, gopherdiscovery.Error) and isinstance(e, OSError) and isinstance(e, ValueError)
    assert problem in str(e)
    assert e.url == bad
    assert e.code == 1


def test_bad_url_for_a_client_and_a_subscriber() -> None:
    with pytest.raises(gopherdiscovery.InvalidUrlError, match="nope"):
        Client("a", survey="nope")
    with pytest.raises(gopherdiscovery.InvalidUrlError, match="nope"):
        Client("a", survey=["tcp://127.0.0.1:40999", "nope"])
    with pytest.raises(gopherdiscovery.InvalidUrlError, match="nope"):
        Subscriber(publish="nope", snapshot=None)


def test_address_in_use() -> None:
    with Server(survey="tcp://127.0.0.1:0", publish="tcp://127.0.0.1:0", snapshot="tcp://127.0.0.1:0") as first:
        taken = first.urls.publish
        with pytest.raises(gopherdiscovery.AddressInUseError) as info:
            Server(survey="tcp://127.0.0.1:0", publish=taken, snapshot="tcp://127.0.0.1:0")
    e = info.value
    assert isinstance(e, OSError) and isinstance(e, gopherdiscovery.Error)
    assert e.errno == errno.EADDRINUSE
    assert f"address in use: {taken}" in str(e)
    assert e.url == taken


def test_deadline_not_shorter_than_interval(url: Callable[[str], str]) -> None:
    with pytest.raises(gopherdiscovery.InvalidOptionError) as info:
        Server(survey=url("s"), publish=url("p"), snapshot=url("n"), interval=0.5, deadline=0.5)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.option == "deadline"
    assert "invalid option deadline: must be shorter than the interval" in str(e)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"interval": -1.0}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"deadline": float("inf")}, "deadline"),
        ({"interval": 0.0}, "interval"),
        ({"evict_after": 0}, "evict_after"),
        ({"evict_after": -3}, "evict_after"),
    ],
)
def test_nonsense_options(url: Callable[[str], str], kwargs: dict[str, float], option: str) -> None:
    with pytest.raises(gopherdiscovery.InvalidOptionError, match=f"invalid option {option}") as info:
        Server(survey=url("s"), publish=url("p"), snapshot=url("n"), **kwargs)  # type: ignore[arg-type]
    assert info.value.option == option


def test_same_url_for_two_sockets(url: Callable[[str], str]) -> None:
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="given for two sockets"):
        Server(survey=url("s"), publish=url("s"), snapshot=url("n"))


def test_non_string_metadata(server: Server) -> None:
    survey = server.urls.survey
    with pytest.raises(gopherdiscovery.InvalidMemberError, match="metadata value for key 'port' must be str, not int"):
        Client("a", survey=survey, metadata={"port": 8080})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="metadata key 1 must be str, not int"):
        Client("a", survey=survey, metadata={1: "x"})  # type: ignore[dict-item]
    with pytest.raises(gopherdiscovery.InvalidMemberError, match="must be a mapping of str to str, got list"):
        Client("a", survey=survey, metadata=["zone", "a"])  # type: ignore[arg-type]
    with Client("a", survey=survey, metadata={"zone": "a"}) as c:
        with pytest.raises(gopherdiscovery.InvalidMemberError, match="key 'weight' must be str, not float"):
            c.set_metadata({"zone": "a", "weight": 1.5})  # type: ignore[dict-item]
        assert c.member.metadata == {"zone": "a"}  # unchanged


def test_bad_members(server: Server) -> None:
    with pytest.raises(gopherdiscovery.InvalidMemberError, match="empty name"):
        Client("", survey=server.urls.survey)
    with pytest.raises(gopherdiscovery.InvalidMemberError, match="name is 2000 bytes, the limit is 1024"):
        Client("x" * 2000, survey=server.urls.survey)
    with pytest.raises(gopherdiscovery.InvalidMemberError, match="metadata is .* bytes encoded"):
        Client("a", survey=server.urls.survey, metadata={"big": "v" * 5000})


def test_bad_survey_lists(server: Server) -> None:
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="survey: needs at least one URL"):
        Client("a", survey=[])
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="survey: expected a URL or a list of URLs"):
        Client("a", survey=[1])  # type: ignore[list-item]
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="snapshot: given without publish"):
        Client("a", survey=server.urls.survey, snapshot=server.urls.snapshot)


def test_negative_timeouts(server: Server, subscriber: Subscriber) -> None:
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="timeout"):
        subscriber.changes(timeout=-1)
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="timeout"):
        subscriber.wait_for(lambda p: True, timeout=float("nan"))


def test_closed_handles_say_so(server: Server) -> None:
    sub = Subscriber(publish=server.urls.publish, snapshot=server.urls.snapshot)
    client = Client("a", survey=server.urls.survey)
    sub.close()
    client.close()
    with pytest.raises(gopherdiscovery.ClosedError, match="subscriber is closed"):
        sub.changes()
    with pytest.raises(gopherdiscovery.ClosedError, match="subscriber is closed"):
        sub.on_peers(print)
    with pytest.raises(gopherdiscovery.ClosedError, match="client is closed"):
        client.set_metadata({})
    assert repr(client) == "<Client name='a' closed>"


def test_every_error_is_one_base_class() -> None:
    classes = [
        gopherdiscovery.InvalidUrlError,
        gopherdiscovery.AddressInUseError,
        gopherdiscovery.InvalidOptionError,
        gopherdiscovery.InvalidMemberError,
        gopherdiscovery.TimeoutError,
        gopherdiscovery.ClosedError,
        gopherdiscovery.ProtocolError,
        gopherdiscovery.TransportError,
        gopherdiscovery.IoError,
    ]
    assert [c.code for c in classes] == list(range(1, 10))  # the C ABI's codes
    assert all(issubclass(c, gopherdiscovery.Error) for c in classes)
    assert issubclass(gopherdiscovery.TimeoutError, TimeoutError)
    assert gopherdiscovery.Error.code is None
    assert all(c.__module__ == "gopherdiscovery" for c in classes)


def test_versions_agree_with_the_cli() -> None:
    import os
    import re
    import subprocess
    from pathlib import Path

    from conftest import ROOT

    cli = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "gopherdiscovery"
    assert gopherdiscovery.nng_version() == "1.11.0"
    assert gopherdiscovery.WIRE_VERSION >= 1
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=True)
    expected = (
        f"gopherdiscovery {gopherdiscovery.__version__} "
        f"(wire {gopherdiscovery.WIRE_VERSION}, NNG {gopherdiscovery.nng_version()})"
    )
    assert out.stdout.strip() == expected
    assert re.fullmatch(r"\d+\.\d+\.\d+", gopherdiscovery.__version__)
