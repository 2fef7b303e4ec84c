"""The raw AES block cipher, for FF1 (NIST SP 800-38G §4.3 CIPH_K).

Only the `mlsvc.crypto` package imports `cryptography`; FF1 (mlsvc.vc.ff1) takes its
block cipher from here.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

BlockEncryptor = CipherContext


def aes_block_encryptor(key: bytes) -> BlockEncryptor:
    """AES-ECB encryptor under `key` (16, 24 or 32 bytes), used one block at a time."""
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor()
