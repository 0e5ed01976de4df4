"""Opening an audit log from where it is: a directory (or file) path, a Redis or PostgreSQL URL."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urldefrag

from hub.audit.file_log import FILENAME, FileAuditLog, FsyncPolicy
from hub.audit.log import AuditLog
from hub.audit.redis_log import DEFAULT_KEY, RedisAuditLog

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_audit_log(
    location: str | os.PathLike[str] | None = None,
    *,
    fsync: FsyncPolicy = "always",
    redis_key: str = DEFAULT_KEY,
) -> AuditLog:
    """``None``: ``./var/audit``. A ``redis://``, ``rediss://`` or ``unix://`` URL: a Redis stream,
    the key taken from the URL fragment (``redis://host:6379/0#hub:audit``) or ``redis_key``.
    A ``postgresql://`` or ``postgres://`` URL: tables in PostgreSQL, in the schema the fragment
    names (``postgresql://host/db#hub_audit``, the default).
    Anything else: a directory, or the path of an ``audit.jsonl`` in one."""
    if isinstance(location, str) and location.startswith(_POSTGRES_SCHEMES):
        # Imported here: a hub on the file or Redis log never loads the database driver.
        from hub.audit.postgres_log import DEFAULT_SCHEMA, PostgresAuditLog

        url, fragment = urldefrag(location)
        return PostgresAuditLog.from_url(url, schema=fragment or DEFAULT_SCHEMA)
    if isinstance(location, str) and location.startswith(_REDIS_SCHEMES):
        url, fragment = urldefrag(location)
        return RedisAuditLog.from_url(url, key=fragment or redis_key)
    if location is not None and Path(location).name == FILENAME:
        return FileAuditLog(Path(location).parent, fsync=fsync)
    return FileAuditLog(location, fsync=fsync)
