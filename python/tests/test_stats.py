"""Statistics in Python, and the same numbers seen from C and Python on one mesh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

import gopherdiscovery
from conftest import Children, c_program, eventually


def test_stats_are_typed_and_count(server: gopherdiscovery.Server, url: Callable[[str], str]) -> None:
    nobody = url("nobody")
    with gopherdiscovery.Client("a", survey=[server.urls.survey, nobody]) as client:
        with gopherdiscovery.Subscriber(publish=server.urls.publish, snapshot=server.urls.snapshot) as sub:
            eventually(lambda: client.stats().survey_urls[0].surveys_answered >= 2, what="two surveys answered")
            eventually(lambda: sub.stats().members == 1, what="the member in the view")
            c = client.stats()
            assert isinstance(c, gopherdiscovery.ClientStats)
            up, down = c.survey_urls
            assert (up.url, up.connected, up.announces_sent) == (server.urls.survey, True, 1)
            assert up.last_survey_age is not None and up.last_survey_age >= 0
            assert (down.url, down.connected, down.surveys_answered, down.last_survey_age) == (nobody, False, 0, None)
            s = server.stats()
            assert isinstance(s, gopherdiscovery.ServerStats)
            assert s.announces == 1 and s.answers >= 2 and s.joined == 1
            assert s.answer_latency.count >= 1
            assert sum(s.answer_latency.buckets) == s.answer_latency.count
            assert len(s.round_lag.buckets) == len(gopherdiscovery.HISTOGRAM_BOUNDS_SECONDS) + 1
            st = sub.stats()
            assert isinstance(st, gopherdiscovery.SubscriberStats)
            assert (st.state, st.members, st.epoch) == ("live", 1, server.epoch)
            with pytest.raises(AttributeError):
                st.members = 2  # type: ignore[misc]


def test_stats_agree_across_c_and_python(
    server: gopherdiscovery.Server, children: Children, tmp_path: Path
) -> None:
    exe = c_program(tmp_path, "tests/c/stats.c")
    with gopherdiscovery.Client("py-member", survey=server.urls.survey), gopherdiscovery.Subscriber(
        publish=server.urls.publish, snapshot=server.urls.snapshot
    ) as sub:
        child = children.start(
            str(exe), server.urls.survey, server.urls.publish, server.urls.snapshot, "c-member", "2"
        )
        line = child.wait_line(lambda l: l.startswith("{"), what="the C member's stats")
        from_c: dict[str, Any] = json.loads(line)
        sub.wait_for(lambda peers: peers == ["c-member", "py-member"], timeout=20)
        eventually(lambda: sub.stats().seq == from_c["subscriber"]["seq"], what="the Python view at the C view's seq")
        py = sub.stats()
        s = server.stats()
        c_sub, c_client = from_c["subscriber"], from_c["client"]
        # One mesh, one truth: the view and the server agree in both languages.
        assert c_sub["state"] == py.state == "live"
        assert c_sub["members"] == py.members == len(server.members) == 2
        assert c_sub["epoch"] == py.epoch == server.epoch
        assert c_sub["seq"] == py.seq
        assert s.joined == 2 and s.announces == 2
        # The C member's client side: one URL, the server's, connected and surveyed.
        assert c_client["connections"] == 1 and c_client["announces_sent"] == 1
        assert c_client["surveys_answered"] >= 1 and c_client["last_survey_age_ms"] >= 0
        (u,) = c_client["survey_urls"]
        assert u["url"] == server.urls.survey and u["connected"] is True
        assert u["surveys_answered"] == c_client["surveys_answered"]
        # The server counted every answer both members sent it, and no more.
        assert s.answers >= c_client["surveys_answered"]
        child.proc.terminate()
        code, err = child.finish()
        assert code == 0, err
        sub.wait_for(lambda peers: peers == ["py-member"], timeout=20)
        assert server.stats().left_closed == 1
