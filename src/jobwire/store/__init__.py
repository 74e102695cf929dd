"""Stores: one contract (``base.Store``), one engine per module."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from jobwire.errors import ConfigError
from jobwire.settings import Settings
from jobwire.store.base import Store


def store_from_url(url: str, settings: Settings | None = None) -> Store:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``memory://``,
    ``postgresql://user:password@host:5432/database[?schema=name]``, or
    ``redis://host:port/db?prefix=jobwire:`` (``rediss://`` for TLS)."""
    settings = settings or Settings()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        raw = url[len("sqlite://") :]
        if raw.startswith("/"):
            raw = raw[1:]  # sqlite:///x.db → x.db ; sqlite:////tmp/x.db → /tmp/x.db
        path = unquote(raw.split("?", 1)[0])
        if not path:
            raise ConfigError(f"JOBWIRE_URL: expected sqlite:///path/to/file.db, got {url!r}")
        from jobwire.store.sqlite import SQLiteStore

        return SQLiteStore(Path(path), synchronous=settings.sqlite_synchronous)
    if scheme in ("postgresql", "postgres"):
        from jobwire.store.postgres import PostgresStore

        return PostgresStore.from_url(
            url, min_size=settings.postgres_pool_min, max_size=settings.postgres_pool_max
        )
    if scheme == "memory":
        from jobwire.store.memory import MemoryStore

        return MemoryStore()
    if scheme in ("redis", "rediss"):
        try:
            from jobwire.store.redis import RedisStore
        except ModuleNotFoundError as exc:  # the optional dependency
            if (exc.name or "").split(".")[0] != "redis":
                raise
            raise ConfigError(
                f"JOBWIRE_URL: {scheme}:// needs the redis client: pip install 'jobwire[redis]'"
            ) from exc
        return RedisStore.from_url(url)
    raise ConfigError(
        f"JOBWIRE_URL: unsupported store {scheme!r} in {url!r}; expected sqlite:///file.db, "
        "postgresql://host/database, redis://host:port/db or memory://"
    )


__all__ = ["Store", "store_from_url"]
