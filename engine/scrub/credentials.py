"""A backup target's credential Secret as the drivers' environment, as Longhorn maps it.

Longhorn reads these keys of the Secret (longhorn-manager datastore/longhorn.go
`GetCredentialFromSecret`) and passes, per store type, only some of them to the backupstore
as environment variables (engineapi/backups.go `getBackupCredentialEnv`; the same in
v1.6.4 .. v1.12.1): s3 gets the AWS keys (the key pair only when both are set), AWS_ENDPOINTS,
AWS_CERT, the proxies and VIRTUAL_HOSTED_STYLE; azblob its AZBLOB_* keys and the proxies;
cifs its user and password; nfs nothing.

The drivers read os.environ, so the values are set around one verification under a lock and
removed after; they are never printed (the drivers redact them from messages).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from longhorn_bi.engine.errors import InvalidInput

PROXIES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")
KEYS_BY_SCHEME: dict[str, tuple[str, ...]] = {
    "s3": ("AWS_ENDPOINTS", "AWS_CERT", *PROXIES, "VIRTUAL_HOSTED_STYLE"),
    "azblob": (
        "AZBLOB_ACCOUNT_NAME",
        "AZBLOB_ACCOUNT_KEY",
        "AZBLOB_ENDPOINT",
        "AZBLOB_CERT",
        *PROXIES,
    ),
    "cifs": ("CIFS_USERNAME", "CIFS_PASSWORD"),
}
AWS_PAIR = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
ALL_KEYS = tuple(dict.fromkeys(k for keys in KEYS_BY_SCHEME.values() for k in keys)) + AWS_PAIR
_environment_lock = threading.Lock()


def credential_env(scheme: str, secret: Mapping[str, str], secret_name: str) -> dict[str, str]:
    """The environment Longhorn gives the backupstore of a `scheme` target with this Secret."""
    env = {key: secret.get(key, "") for key in KEYS_BY_SCHEME.get(scheme, ())}
    if scheme == "s3":
        missing = [key for key in AWS_PAIR if not secret.get(key)]
        if missing and not secret.get("AWS_IAM_ROLE_ARN"):
            raise InvalidInput(
                f"credential Secret {secret_name!r} of an s3 target lacks {', '.join(missing)}",
                hint="add both keys to the Secret (or AWS_IAM_ROLE_ARN), as Longhorn requires",
            )
        if not missing:
            env |= {key: secret[key] for key in AWS_PAIR}
    return {key: value for key, value in env.items() if value}


@contextmanager
def store_environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """Run with exactly `env` for the credential keys (others of ALL_KEYS unset), then restore.

    None (a target without a Secret) keeps the caller's own environment, as the store
    commands do. One verification at a time holds the environment; parallel workers use
    processes."""
    with _environment_lock:
        if env is None:
            yield
            return
        saved = {key: os.environ.get(key) for key in ALL_KEYS}
        try:
            for key in ALL_KEYS:
                os.environ.pop(key, None)
            os.environ.update(env)
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
