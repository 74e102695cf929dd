"""Webhooks per the Standard Webhooks specification: a persistent outbox of signed
deliveries, derived from the job's event log.

- :mod:`.signing` — ``whsec_`` secrets and ``v1,`` HMAC-SHA256 signatures;
- :mod:`.egress` — which addresses a delivery may go to, checked on every resolved
  address, and a request pinned to the address that was checked;
- :mod:`.options` — the ``webhook`` option of a submit, validated;
- :mod:`.outbox` — the service that claims due deliveries and sends them.

This module imports nothing, so that :mod:`jobwire.settings` can use :mod:`.signing`.
"""
