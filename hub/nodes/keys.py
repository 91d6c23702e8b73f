"""Node command-signing keys, kept encrypted at rest (Fernet) under the hub's own secret.

The hub's secret comes from PINGAN_SECRET_KEY, or is made once in the data directory with
mode 0600 (a production install passes it through systemd's LoadCredential instead).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from edge.shared.yamlconfig import atomic_write
from hub.config import HubSettings
from hub.errors import SettingsError


class KeyVault:
    def __init__(self, settings: HubSettings) -> None:
        secret = settings.secret_key or os.environ.get("PINGAN_SECRET_KEY")
        if not secret:
            cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
            cred = Path(cred_dir) / "pingan-secret-key" if cred_dir else None
            path = cred if cred and cred.is_file() else settings.data_dir / "secret.key"
            if not path.exists():
                atomic_write(path, Fernet.generate_key(), mode=0o600)
            secret = path.read_text().strip()
        try:
            self._fernet = Fernet(secret.encode())
        except ValueError:
            raise SettingsError("PINGAN_SECRET_KEY is not a Fernet key (make one with "
                                "python -c 'from cryptography.fernet import Fernet; "
                                "print(Fernet.generate_key().decode())')") from None

    @staticmethod
    def new_node_key() -> str:
        return secrets.token_urlsafe(32)

    def seal(self, key: str) -> str:
        return self._fernet.encrypt(key.encode()).decode()

    def open(self, sealed: str) -> bytes:
        try:
            return self._fernet.decrypt(sealed.encode())
        except InvalidToken:
            raise SettingsError("a node key cannot be decrypted: PINGAN_SECRET_KEY changed?") from None
