"""What error bodies may say: a 503 names the store and its outage, not the statement;
a refused input is echoed only as plain, short JSON."""

from __future__ import annotations

import json
import math

from fastapi import HTTPException

from jobwire.api.problems import echoable, invalid, to_http
from jobwire.errors import StoreUnavailable


def test_a_503_names_the_outage_in_one_line_without_the_statement() -> None:
    exc = StoreUnavailable(
        "PostgreSQL read failed: ConnectionDoesNotExistError: connection was closed\n"
        "QUERY: SELECT * FROM jobwire_jobs WHERE owner = $1\nARGS: ('alice',)"
    )
    answer = to_http(exc)
    assert isinstance(answer, HTTPException) and answer.status_code == 503
    assert answer.detail == (
        "the job store is unavailable: PostgreSQL read failed: "
        "ConnectionDoesNotExistError: connection was closed"
    )
    assert answer.headers == {"Retry-After": "1"}


def test_inputs_that_are_not_plain_json_are_not_echoed() -> None:
    for value in (math.nan, math.inf, -math.inf, 10**400, b"bytes", object()):
        assert echoable(value) is None
    assert echoable([1, math.nan, {"x": math.inf}]) == [1, None, {"x": None}]
    assert echoable("x" * 1000) == "x" * 200 + "…"
    error = invalid(("body", "delay"), "must be finite", value=math.nan).errors()[0]
    json.dumps(error["input"], allow_nan=False)
