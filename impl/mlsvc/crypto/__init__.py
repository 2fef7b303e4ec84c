"""Cryptographic primitives of RFC 9420 (§5) on `cryptography`."""
