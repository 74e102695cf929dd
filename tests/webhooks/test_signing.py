"""Signatures and secrets: what the standardwebhooks package computes, we compute."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from jobwire import ConfigError, Settings
from jobwire.webhooks.outbox import parse_retry_after
from jobwire.webhooks.signing import decode_secret, signature, signed_headers
from tests.webhooks.app import new_secret


def test_the_signature_is_the_one_the_standardwebhooks_package_computes() -> None:
    secret = new_secret()
    body = '{"type":"job.succeeded","data":{"x":"é"}}'
    ours = signature(decode_secret(secret), "msg_1", 1_700_000_000, body.encode())
    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(1_700_000_000, UTC), body)
    assert ours == theirs
    assert ours.startswith("v1,")


def test_signed_headers_verify_with_the_standardwebhooks_package() -> None:
    secret = new_secret()
    body = b'{"type":"job.failed"}'
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers(decode_secret(secret), "msg_x_3", now, body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(body, headers) == {"type": "job.failed"}


def test_a_secret_without_padding_decodes_to_the_same_key() -> None:
    key = bytes(range(20))
    text = base64.b64encode(key).decode()
    assert decode_secret("whsec_" + text.rstrip("=")) == decode_secret("whsec_" + text) == key


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0", "does not start with whsec_"),
        ("whsec_not base64!", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
    ],
)
def test_a_malformed_secret_is_refused_at_start_naming_the_variable(secret: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"JOBWIRE_WEBHOOK_SECRET: .*{why}"):
        Settings.from_env({"JOBWIRE_WEBHOOK_SECRET": secret})


def test_the_secret_is_read_from_its_variable_and_kept_out_of_the_settings_repr() -> None:
    secret = new_secret()
    settings = Settings.from_env({"JOBWIRE_WEBHOOK_SECRET": secret})
    assert settings.webhook_secret == secret
    assert secret not in repr(settings)


def test_webhook_settings_are_read_from_their_variables() -> None:
    settings = Settings.from_env(
        {
            "JOBWIRE_WEBHOOK_MAX_ATTEMPTS": "3",
            "JOBWIRE_WEBHOOK_ALLOW_PRIVATE": "true",
            "JOBWIRE_WEBHOOK_ALLOWED_CIDRS": "10.1.0.0/16, fd00::/8",
            "JOBWIRE_WEBHOOK_TIMEOUT_SECONDS": "2.5",
        }
    )
    assert settings.webhook_max_attempts == 3
    assert settings.webhook_allow_private is True
    assert settings.webhook_allowed_cidrs == ("10.1.0.0/16", "fd00::/8")
    assert settings.webhook_timeout_seconds == 2.5


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("JOBWIRE_WEBHOOK_ALLOWED_CIDRS", "10.1.0.0/16,intranet", "got 'intranet'"),
        ("JOBWIRE_WEBHOOK_MAX_ATTEMPTS", "0", "expected a positive number"),
        ("JOBWIRE_WEBHOOK_BACKOFF_SECONDS", "7200", "expected at most"),
    ],
)
def test_invalid_webhook_settings_are_refused_naming_the_variable(
    variable: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=f"{variable}: .*{message}"):
        Settings.from_env({variable: raw})


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # an HTTP date, 30 s after "now"
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: at once
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(header, now) == seconds
