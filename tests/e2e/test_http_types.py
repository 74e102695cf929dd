"""Declared types and constraints of a job's parameters, over HTTP: refused at submit
with a 422 naming the field, and shown in the OpenAPI schema of the submit body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

GOOD = {"n": 5, "points": [{"x": 1}]}


@pytest.mark.parametrize(
    ("args", "loc", "kind"),
    [
        ({"n": 0, "points": []}, ["n"], "greater_than_equal"),
        ({"n": 101, "points": []}, ["n"], "less_than_equal"),
        ({**GOOD, "count": 9}, ["count"], "less_than"),
        ({**GOOD, "mode": "turbo"}, ["mode"], "literal_error"),
        ({"n": 5, "points": [{"x": -1}]}, ["points", 0, "x"], "greater_than_equal"),
    ],
)
async def test_a_submit_breaking_a_declared_constraint_is_refused_with_422_naming_the_field(
    client: httpx.AsyncClient, args: dict[str, Any], loc: list[Any], kind: str
) -> None:
    response = await client.post("/jobs", json={"job": "constrained", "args": args})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert set(error) >= {"type", "loc", "msg", "input"}
    assert error["loc"] == ["body", "args", *loc]
    assert error["type"] == kind
    listed = await client.get("/jobs", params={"job": "constrained"})
    assert listed.json()["items"] == [], "a refused submit stored nothing"


async def test_a_submit_within_the_constraints_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", json={"job": "constrained", "args": GOOD})
    assert response.status_code == 202, response.text
    assert response.json()["args"] == {
        **GOOD,
        "points": [{"x": 1, "y": 0}],
        "count": 0,
        "mode": "fast",
    }


async def test_the_openapi_schema_shows_the_declared_constraints(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schema = document["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]
    variants = {v["properties"]["job"]["enum"][0]: v for v in schema["schema"]["oneOf"]}
    args = variants["constrained"]["properties"]["args"]
    props = args["properties"]
    assert (props["n"]["minimum"], props["n"]["maximum"]) == (1, 100)
    assert (props["count"]["minimum"], props["count"]["exclusiveMaximum"]) == (0, 5)
    assert props["mode"]["enum"] == ["fast", "slow"]
    point = props["points"]["items"]
    assert point["type"] == "object" and point["required"] == ["x"]
    assert point["properties"]["x"]["minimum"] == 0
    assert sorted(args["required"]) == ["n", "points"]
