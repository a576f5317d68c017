"""The secret key behind keyed pseudonyms and surrogate seeds.

The key comes from ``DEPLOYSIM_SECRET_KEY`` (hex or any text) or, failing that, from a key file
outside the run store (``$DEPLOYSIM_KEY_FILE``, default ``~/.config/deploysim/secret.key``) created
once with 32 random bytes. It is never written to the store, manifests, reports or logs: a store
alone cannot reverse a pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

ENV_KEY = "DEPLOYSIM_SECRET_KEY"
ENV_KEY_FILE = "DEPLOYSIM_KEY_FILE"


def key_file() -> Path:
    """Where the key lives when it is not given in the environment."""
    override = os.environ.get(ENV_KEY_FILE)
    if override:
        return Path(override).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "deploysim" / "secret.key"


def load_secret_key() -> bytes:
    """The secret key: from the environment, else the key file (created on first use)."""
    env = os.environ.get(ENV_KEY)
    if env:
        return env.encode("utf-8")
    path = key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes creating the key at once must not end with different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def pseudonym(raw_id: str, key: bytes, *, prefix: str = "c") -> str:
    """A keyed, stable pseudonym for an identifier (HMAC-SHA256, 16 hex digits)."""
    digest = hmac.new(key, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}_{digest[:16]}"
