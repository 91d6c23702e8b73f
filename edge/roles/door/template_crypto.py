"""Fingerprint templates between a block's doors: AES-256-GCM under the block key.

The block key is a secret of the block's door nodes (``PINGAN_BLOCK_KEY`` in the environment or
``$CREDENTIALS_DIRECTORY``), never the hub's: the hub forwards the ciphertext from the door where the
tenant enrolled to the block's other doors, and cannot read it. The AES key is derived from the secret
with HKDF-SHA256, so any high-entropy string works as the secret. Wire format: base64url of
``b"PT1" + 12-byte nonce + ciphertext-and-tag``; the tenant id is authenticated data, so a template
cannot be replayed under another tenant's name.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edge.errors import PinganError

_MAGIC = b"PT1"


class TemplateKeyError(PinganError, ValueError):
    """A synced template cannot be opened: wrong or missing block key, or tampered data."""


def _aes(block_key: bytes) -> AESGCM:
    if not block_key:
        raise TemplateKeyError("no block key: set PINGAN_BLOCK_KEY (the same on every door of the block)")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pingan block template key v1").derive(block_key)
    return AESGCM(key)


def seal_template(block_key: bytes, template: bytes, tenant_id: str) -> str:
    nonce = os.urandom(12)
    ct = _aes(block_key).encrypt(nonce, template, tenant_id.encode())
    return base64.urlsafe_b64encode(_MAGIC + nonce + ct).decode()


def open_template(block_key: bytes, sealed: str, tenant_id: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
    except (ValueError, TypeError):
        raise TemplateKeyError("template_enc is not base64") from None
    if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + 12 + 16:
        raise TemplateKeyError("template_enc is not a sealed template")
    nonce, ct = raw[len(_MAGIC):len(_MAGIC) + 12], raw[len(_MAGIC) + 12:]
    try:
        return _aes(block_key).decrypt(nonce, ct, tenant_id.encode())
    except InvalidTag:
        raise TemplateKeyError("template_enc does not open with this door's block key (is PINGAN_BLOCK_KEY "
                               "the same on every door of the block?) or was altered") from None
