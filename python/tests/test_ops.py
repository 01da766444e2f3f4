"""Operating a server: the CLI's `serve --http` endpoint read by the tools an
operator uses (the Prometheus text parser, a real browser), and one word per
concept on the Python face (``Client(name=...)``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import gopherdiscovery
from conftest import DEADLINE, ROOT, Children, eventually

CLI = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "gopherdiscovery"
NAMES = ["<script>alert(1)</script>", "http://10.0.0.1:8080", "b&b"]


def fetch(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=DEADLINE) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def serve_http(children: Children, tmp: Path) -> tuple[str, str]:
    """`serve --http 127.0.0.1:0`; returns the survey URL and the http base URL."""
    assert CLI.is_file(), f"{CLI} is missing: python/run-tests.sh builds it"
    survey = f"ipc://{tmp}/survey"
    server = children.start(
        str(CLI), "serve", "--survey", survey, "--publish", f"ipc://{tmp}/publish",
        "--snapshot", f"ipc://{tmp}/snapshot", "--http", "127.0.0.1:0",
    )
    line = server.wait_line(lambda l: l.startswith("serving "), what="the serving line")
    addr = next(w[len("http="):] for w in line.split() if w.startswith("http="))
    print(f"http endpoint at {addr}")
    return survey, f"http://{addr}"


def with_members(children: Children, tmp: Path) -> tuple[str, list[gopherdiscovery.Client]]:
    survey, base = serve_http(children, tmp)
    clients = [gopherdiscovery.Client(name=n, survey=survey, metadata={"k": "<v>"}) for n in NAMES]

    def listed() -> bool:
        return len(json.loads(fetch(base + "/members.json")[2])["peers"]) == len(NAMES)

    eventually(listed, what="every member in /members.json")
    return base, clients


def test_metrics_parse_with_the_prometheus_parser(children: Children, tmp_path: Path) -> None:
    base, clients = with_members(children, tmp_path)
    try:
        status, ctype, text = fetch(base + "/metrics")
        assert status == 200
        assert ctype.startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert len(families) > 20
        for f in families.values():
            assert f.documentation, f"{f.name} has no HELP"
            assert f.type != "unknown", f"{f.name} has no TYPE"
            if f.type == "counter":
                for s in f.samples:
                    assert s.name.endswith(("_total", "_created")), s.name
            else:
                assert not f.name.endswith("_total"), f"gauge {f.name} ends in _total"
        members = {s.labels["kind"]: s.value for s in families["gopherdiscovery_members"].samples}
        listed = json.loads(fetch(base + "/members.json")[2])
        assert members == {"native": len(NAMES), "legacy": 0}
        assert len(listed["members"]) == members["native"]
        status_json = json.loads(fetch(base + "/status.json")[2])
        assert status_json["members"] == len(NAMES)
        assert isinstance(status_json["epoch"], str) and len(status_json["epoch"]) == 16
        # Every label set exists from the start, at 0 when nothing happened.
        drops = families["gopherdiscovery_dropped_messages"].samples
        assert {(s.labels["socket"], s.labels["reason"]) for s in drops} >= {
            ("survey", "malformed"), ("survey", "oversize"), ("survey", "full"), ("snapshot", "malformed"),
            ("survey", "control_chars"), ("survey", "budget"), ("survey", "per_connection"), ("snapshot", "repeated"),
        }
        assert status_json["dropped"]["survey.control_chars"] == 0
        assert all(s.value == 0 for s in drops)
        for name in ("process_cpu_seconds", "process_resident_memory_bytes", "gopherdiscovery_build_info"):
            assert name in families, sorted(families)
    finally:
        for c in clients:
            c.close()


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium: python/run-tests.sh installs Debian's chromium with apt-get when it can "
                "(as root); it could not here")


def test_status_page_renders_every_member_in_headless_chromium(children: Children, tmp_path: Path) -> None:
    browser = chromium()
    base, clients = with_members(children, tmp_path)
    try:
        with tempfile.TemporaryDirectory() as profile:
            out = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--dump-dom", base + "/"],
                capture_output=True, text=True, timeout=120,
            )
        assert out.returncode == 0, out.stderr[-2000:]
        dom = out.stdout
        assert 'id="members"' in dom, dom[:2000]
        rows = [r for r in dom.split('<tr class="member">')[1:]]
        assert len(rows) == len(NAMES), dom
        for name in NAMES:
            escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert f"<td>{escaped}</td>" in dom, (name, dom)
        # The name stayed text: the browser built no script element from it.
        assert "<script>" not in dom
    finally:
        for c in clients:
            c.close()


def test_client_name_and_its_alias_service(tmp_path: Path) -> None:
    survey = f"ipc://{tmp_path}/survey"
    with gopherdiscovery.Client(name="a", survey=survey) as a, gopherdiscovery.Client(service="b", survey=survey) as b:
        assert a.member.name == "a" and b.member.name == "b"
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="name"):
        gopherdiscovery.Client(name="a", service="b", survey=survey)
    with pytest.raises(gopherdiscovery.InvalidOptionError, match="name"):
        gopherdiscovery.Client(survey=survey)


def test_server_deadline_defaults_to_half_the_interval(tmp_path: Path) -> None:
    # 0.4 alone used to fail: the deadline default (0.5) stayed.
    with gopherdiscovery.Server(
        survey=f"ipc://{tmp_path}/s", publish=f"ipc://{tmp_path}/p", snapshot=f"ipc://{tmp_path}/n", interval=0.4
    ) as server:
        assert not server.closed
