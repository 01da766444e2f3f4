"""A mixed-language cluster: a Python server; members from the Rust CLI, the C example
and Python; a Python subscriber sees them all; a killed member leaves, reason closed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import DEADLINE, ROOT, Children, Recorder, event_is

import gopherdiscovery

CLI = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "gopherdiscovery"
C_MEMBER = ROOT / "build" / "c" / "member"


def test_cli_is_built() -> None:
    assert CLI.is_file(), f"{CLI} is missing: run `cargo build` in {ROOT} (python/run-tests.sh does)"


def test_c_member_is_built() -> None:
    if not C_MEMBER.is_file():
        pytest.skip(f"{C_MEMBER} is absent (built by tests/c/run.sh): the mixed cluster runs without a C member")


@pytest.mark.skipif(not CLI.is_file(), reason="the Rust CLI is not built")
def test_mixed_language_cluster(children: Children) -> None:
    with gopherdiscovery.Server(
        survey="tcp://127.0.0.1:0", publish="tcp://127.0.0.1:0", snapshot="tcp://127.0.0.1:0", interval=0.5, deadline=0.25
    ) as server:
        urls = server.urls
        events = Recorder()
        with gopherdiscovery.Subscriber(publish=urls.publish, snapshot=urls.snapshot) as sub:
            sub.on_event(events)
            expected = {"http://127.0.0.1:9001"}
            rust = children.start(
                str(CLI), "join", "--name", "http://127.0.0.1:9001", "--survey", urls.survey, "--meta", "lang=rust"
            )
            if C_MEMBER.is_file():
                # member NAME SURVEY_URL PUBLISH_URL SNAPSHOT_URL [KEY=VALUE]... (examples/c/member.c)
                c = children.start(
                    str(C_MEMBER), "http://127.0.0.1:9002", urls.survey, urls.publish, urls.snapshot, "lang=c"
                )
                c.wait_line(lambda line: line == "joined http://127.0.0.1:9002", what="the C member's join")
                expected.add("http://127.0.0.1:9002")
            else:
                print(f"no C member: {C_MEMBER} is absent (built by tests/c/run.sh)")
            with gopherdiscovery.Client("http://127.0.0.1:9003", survey=urls.survey, metadata={"lang": "python"}):
                expected.add("http://127.0.0.1:9003")
                peers = sub.wait_for(lambda p: set(p) == expected, DEADLINE)
                assert peers == sorted(expected)
                langs = {m.name: m.metadata.get("lang") for m in sub.members}
                assert langs["http://127.0.0.1:9001"] == "rust"
                assert langs["http://127.0.0.1:9003"] == "python"
                if C_MEMBER.is_file():
                    assert langs["http://127.0.0.1:9002"] == "c"
                assert {m.name for m in server.members} == expected

                # kill -9: no goodbye; the closed connection removes it at once.
                rust.proc.send_signal(signal.SIGKILL)
                rust.proc.wait(DEADLINE)
                left = events.wait_for(event_is("left", "http://127.0.0.1:9001"), what="the killed member's leave")
                assert left.reason == "closed"
                expected.discard("http://127.0.0.1:9001")
                assert sub.wait_for(lambda p: set(p) == expected, DEADLINE) == sorted(expected)
