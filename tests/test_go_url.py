"""engine/go_url.py answers as Go's net/url.ParseRequestURI does.

tests/data/go_url_cases.json holds what a real Go (1.19, tools/gourl) made of the URLs of
tests/go_url_cases.py: validity, scheme, host and hostname.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longhorn_bi.engine.go_url import GoURLError, parse_request_uri
from tests.go_url_cases import cases

ANSWERS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "go_url_cases.json").read_text()
)["answers"]


def test_the_answers_are_for_the_current_cases() -> None:
    assert [a["url"] for a in ANSWERS] == cases()
    assert 400 < sum(a["ok"] for a in ANSWERS) < len(ANSWERS) - 400  # both kinds, many


def _ours(raw: str) -> tuple[bool, str, str, str]:
    try:
        url = parse_request_uri(raw)
    except GoURLError:
        return (False, "", "", "")
    return (True, url.scheme, url.host, url.hostname)


def test_parse_request_uri_answers_as_go() -> None:
    wrong = [
        (a["url"], _ours(a["url"]), go)
        for a in ANSWERS
        if _ours(a["url"]) != (go := (a["ok"], a["scheme"], a["host"], a["hostname"]))
    ]
    assert not wrong, wrong[:10]


def test_a_wrong_answer_would_show() -> None:
    """The comparison sees a difference: an answer changed on purpose is found."""
    answer = next(a for a in ANSWERS if a["ok"] and a["hostname"])
    assert _ours(answer["url"]) != (
        True,
        answer["scheme"],
        answer["host"],
        answer["hostname"] + "x",
    )
