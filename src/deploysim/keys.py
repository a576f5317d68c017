"""The secret key behind keyed pseudonyms and surrogate seeds.

The key comes from ``DEPLOYSIM_SECRET_KEY`` (hex or any text) or, failing that, from a key file
outside the run store (``$DEPLOYSIM_KEY_FILE``, default ``~/.config/deploysim/secret.key``) created
once with 32 random bytes. It is never written to the store, manifests, reports or logs: a store
alone cannot reverse a pseudonym.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from deploysim.errors import UsageError

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
        _create_key_file(path)
    key = path.read_text().strip()
    if not key:
        raise UsageError(
            f"{path}: the secret key file is empty; delete it only if no store was "
            "de-identified with it (pseudonyms would change), or set DEPLOYSIM_SECRET_KEY"
        )
    return key.encode("utf-8")


def _create_key_file(path: Path) -> None:
    """Write a new key so that no process ever reads a partial one.

    The key is written in full to a private temporary file, which is then hard-linked to its
    name: the link either appears with the whole key or fails because another process's key is
    already there, in which case that key wins and every process reads the same one. (Creating
    the file with O_EXCL and then writing left a window in which a second process read it
    empty.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret.key.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        # Another process may win the race: its complete key is then the key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def pseudonym(raw_id: str, key: bytes, *, prefix: str = "c") -> str:
    """A keyed, stable pseudonym for an identifier (HMAC-SHA256, 16 hex digits)."""
    digest = hmac.new(key, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}_{digest[:16]}"
