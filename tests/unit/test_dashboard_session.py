"""Dashboard sessions: signed, expiring, bound to a key still configured; CSRF tokens
bound to the session; the same-origin test for actions."""

from __future__ import annotations

from jobwire.dashboard.session import SESSION_SECONDS, Sessions, same_origin

KEYS = {"k-alice": "alice", "k-bob": "bob"}


def test_a_session_names_the_owner_of_its_key_until_it_expires() -> None:
    sessions = Sessions.for_keys(KEYS)
    cookie = sessions.issue("k-alice", now=1000.0)
    assert cookie is not None and "k-alice" not in cookie
    assert sessions.owner(cookie, now=1000.0 + SESSION_SECONDS - 1) == "alice"
    assert sessions.owner(cookie, now=1000.0 + SESSION_SECONDS + 1) is None
    assert sessions.issue("guess") is None


def test_another_process_with_the_same_keys_accepts_it_and_other_keys_do_not() -> None:
    cookie = Sessions.for_keys(KEYS).issue("k-alice")
    assert Sessions.for_keys(dict(KEYS)).owner(cookie) == "alice"
    without_alice = Sessions.for_keys({"k-bob": "bob"})
    assert without_alice.owner(cookie) is None


def test_a_tampered_session_is_refused() -> None:
    sessions = Sessions.for_keys(KEYS)
    cookie = sessions.issue("k-bob")
    assert cookie is not None
    version, expires, owner, key, mac = cookie.split(".")
    forged_owner = ".".join([version, expires, "YWxpY2U", key, mac])  # "alice"
    longer = ".".join([version, str(int(expires) + 10**6), owner, key, mac])
    for bad in (forged_owner, longer, cookie + "x", "", "v1", cookie.replace(".", ":")):
        assert sessions.owner(bad) is None


def test_a_csrf_token_is_bound_to_its_session() -> None:
    sessions = Sessions.for_keys(KEYS)
    token = sessions.csrf_token("session-a")
    assert sessions.csrf_ok("session-a", token)
    assert not sessions.csrf_ok("session-b", token)
    assert not sessions.csrf_ok("session-a", None)
    assert not sessions.csrf_ok("session-a", "")


def test_same_origin_believes_fetch_metadata_then_origin() -> None:
    host = {"host": "jobs.example:8000"}
    assert same_origin({**host, "sec-fetch-site": "same-origin", "origin": "null"}, "http")
    assert not same_origin({**host, "sec-fetch-site": "same-site"}, "http")
    assert not same_origin({**host, "sec-fetch-site": "cross-site"}, "http")
    assert same_origin({**host, "origin": "http://jobs.example:8000"}, "http")
    assert same_origin({**host, "origin": "https://jobs.example:8000"}, "http")  # behind TLS
    assert not same_origin({**host, "origin": "http://evil.example"}, "http")
    assert not same_origin({**host, "origin": "null"}, "http")
    assert same_origin(host, "http")  # no browser metadata: not a browser's cross-site request
