"""Shared fixtures: URLs in a private temp dir, a fast server, child processes that
are always killed, and a recorder to wait on callbacks with a deadline."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import gopherdiscovery

ROOT = Path(__file__).resolve().parents[2]
# Every wait in these tests ends on a condition; this is only how long we give it.
DEADLINE = 20.0


def c_program(tmp_path: Path, source: str) -> Path:
    """The C program ``source`` (relative to the repository) built with cc against the
    Rust static library; skipped only when there is no C compiler. The library is
    built by cargo when cargo is on PATH, else taken as python/run-tests.sh built it
    (its tests run with neither cargo nor cmake on PATH)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip(f"no C compiler (cc/gcc) to build {source}")
    lib = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "libgopherdiscovery.a"
    if shutil.which("cargo"):
        subprocess.run(["cargo", "build", "--locked", "--quiet", "--lib"], cwd=ROOT, check=True)
    assert lib.is_file(), f"{lib} is missing: run `cargo build --lib` in {ROOT} (python/run-tests.sh does)"
    exe = tmp_path / Path(source).stem
    subprocess.run(
        [cc, "-std=c99", "-Wall", "-Werror", f"-I{ROOT}/include", str(ROOT / source), "-o", str(exe),
         str(lib), "-lpthread", "-ldl", "-lm"],
        check=True,
    )
    return exe


def eventually(condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition") -> Any:
    """Polls ``condition`` until it returns something true; fails after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Recorder:
    """A callback that keeps what it is given and lets a test wait for an item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[Any] = []

    def __call__(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = DEADLINE, what: str = "an item") -> Any:
        def match() -> Any:
            return next((i for i in self.items if predicate(i)), None)

        with self._cond:
            if not self._cond.wait_for(lambda: match() is not None, timeout):
                raise AssertionError(f"timed out waiting for {what}; got {self.items!r}")
            return match()


def event_is(kind: str, name: str, reason: Optional[str] = None) -> Callable[[gopherdiscovery.Event], bool]:
    return lambda e: e.kind == kind and e.member.name == name and (reason is None or e.reason == reason)


@pytest.fixture
def url(tmp_path: Path) -> Callable[[str], str]:
    """``url("survey")`` → an ipc:// URL in this test's own temp dir."""
    return lambda name: f"ipc://{tmp_path}/{name}"


@pytest.fixture
def server(url: Callable[[str], str]) -> Iterator[gopherdiscovery.Server]:
    with gopherdiscovery.Server(
        survey=url("survey"), publish=url("publish"), snapshot=url("snapshot"), interval=0.2, deadline=0.1
    ) as s:
        yield s


@pytest.fixture
def subscriber(server: gopherdiscovery.Server) -> Iterator[gopherdiscovery.Subscriber]:
    with gopherdiscovery.Subscriber(publish=server.urls.publish, snapshot=server.urls.snapshot) as sub:
        yield sub


class Child:
    """A child process whose stdout lines are collected by a reader thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines = Recorder()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = DEADLINE, what: str = "a line") -> str:
        """Waits for a stdout line matching ``predicate``."""
        try:
            line: str = self.lines.wait_for(predicate, timeout, what)
            return line
        except AssertionError:
            code = self.proc.poll()
            raise AssertionError(
                f"{self.proc.args!r} (exit code {code}) printed no {what}; stdout {self.lines.items!r}"
            ) from None

    def finish(self, timeout: float = DEADLINE) -> tuple[int, str]:
        """Waits for the exit; returns the exit code and stderr."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


class Children:
    """Child processes of one test; every one is killed and reaped at the end."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, *args: str, **kw: Any) -> Child:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            **kw,
        )
        child = Child(proc)
        self.children.append(child)
        return child

    def python(self, *args: str) -> Child:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return self.start(sys.executable, *args, env=env)

    def cleanup(self) -> None:
        for c in self.children:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGKILL)
            c.proc.wait(DEADLINE)
            c._reader.join(DEADLINE)
            for stream in (c.proc.stdout, c.proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    c = Children()
    try:
        yield c
    finally:
        c.cleanup()


def thread_names() -> list[str]:
    return [t.name for t in threading.enumerate()]


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
