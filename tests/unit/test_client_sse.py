"""The client's SSE decoder reads jobwire's streams as a browser would."""

from __future__ import annotations

from jobwire.client import ServerSentEvent, SSEDecoder


def decode(text: str) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events = [e for line in text.split("\n") if (e := decoder.feed(line)) is not None]
    return events, decoder


def test_named_and_plain_events_comments_and_the_retry_hint() -> None:
    events, decoder = decode(
        'retry: 2000\nid: 1\nevent: queued\ndata: {"a":1}\n\n'
        ": keep-alive\n\n"
        'id: 2\ndata: {"b":2}\n\n'
    )

    assert events == [
        ServerSentEvent("1", "queued", '{"a":1}'),
        ServerSentEvent("2", "message", '{"b":2}'),
    ]
    assert decoder.retry_ms == 2000
    assert decoder.last_event_id == "2"


def test_data_over_several_lines_is_joined_and_an_unfinished_event_is_not_sent() -> None:
    events, decoder = decode("data: one\ndata:two\n\nid: 9\ndata: cut")

    assert events == [ServerSentEvent(None, "message", "one\ntwo")]
    assert decoder.last_event_id is None  # the event with id 9 never ended
