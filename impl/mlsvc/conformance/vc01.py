"""The public vc-01 vectors (havenmessenger/interop, `tests/vectors/vc-01-vectors.json`,
pinned at vectors/third-party/havenmessenger-interop_vc-01-vectors.json): every field,
checked against the later text (profile "latest", mlsvc.vc.profiles) with the library's
own primitives. `mlsvc vectors check vc-01 FILE`; `mlsvc vectors` runs the pinned copy.

The file targets draft-ietf-mls-virtual-clients-01, whose §5.2 and §5.6.1-§5.6.3 are,
for everything these vectors exercise, the latest text's sections of the same numbers
(shared/spec/draft-ietf-mls-virtual-clients-latest.md). The text wins: a value is
"reproduced" when the text's computation gives it; a value the text does not give is
reproduced, if at all, only under a documented deviation (docs/INTEROP.md, the D
list), and is reported with that deviation's ID; anything else fails.

Every field of every case is checked, and each becomes one CaseResult (section, kind):
- "output": recomputed and compared. The "ours_*" and "openmls_extracted_*" values by
  the text; "openmls_ciphertext", "openmls_reuse_guard_hex", "openmls_decrypt_roundtrip"
  and "openmls_recovered_leaf_index" (openmls's small-space PRP, openmls's decryption of
  its own output) by the D4 mapping, with the text's value for the same input in the
  detail;
- "input": validated against the text's domain (lengths, uint ranges, x mod N_e ==
  leaf_index_e, ...); the 32-byte key_schedule_nonce is D5;
- "name" (each case's `case`: non-empty, unique in its section) and "metadata" (the
  top-level fields: format_version 1, the one ciphersuite 0x0001, the pinned openmls
  commit). A missing or unknown field fails. Nothing is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from mlsvc.conformance.base import CaseResult, FileResult, Mismatch
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import MLSError
from mlsvc.types import LeafIndex
from mlsvc.vc.codepoints import PRP_KEY_LENGTH, RatchetType
from mlsvc.vc.epoch import derive_epoch_secrets
from mlsvc.vc.ff1 import prp_decrypt, prp_encrypt
from mlsvc.vc.generation_id import generation_id
from mlsvc.vc.profiles import Profile
from mlsvc.vc.reuse_guard import (
    check_x,
    derive_prp_key,
    leaf_count_exponent,
    make_reuse_guard,
    recover_leaf_index,
    reuse_guard_key_secret,
)

FILE_STEM: Final = "havenmessenger-interop_vc-01-vectors"
PROFILE: Final = Profile.LATEST
SUITE: Final = 1
SUITE_NAME: Final = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"

DEVIATIONS: Final[dict[str, str]] = {
    "D4": "openmls's small-space PRP reverses the bits within each big-endian byte of the "
          "uint32 (fpe BinaryNumeralString::from_bytes_le(x.to_be_bytes())); latest "
          "§5.6.1 lists a uint32's bits most significant first",
    "D5": "key_schedule_nonce_hex is 32 bytes; the key schedule of ciphersuite 0x0001 "
          "provides AEAD.Nn = 12-byte nonces (latest §5.6.2, RFC 9420 §9.1)",
}
"""The documented deviations this file's values need (docs/INTEROP.md)."""

SECTIONS: Final = ("epoch_secrets", "small_space_prp", "reuse_guard", "generation_id")
METADATA: Final = ("format_version", "ciphersuite", "openmls_main_pinned_sha")

_EPOCH_OUTPUTS: Final = ("epoch_id", "epoch_base_secret", "epoch_encryption_key",
                         "generation_id_secret", "reuse_guard_secret")

FIELDS: Final[dict[str, dict[str, str]]] = {
    "epoch_secrets": {
        "case": "name", "emulator_epoch_secret_hex": "input",
        **{f"{n}_hex": "output" for n in _EPOCH_OUTPUTS},
        **{f"openmls_extracted_{n}_hex": "output" for n in _EPOCH_OUTPUTS},
    },
    "small_space_prp": {
        "case": "name", "key_hex": "input", "plaintext": "input",
        "ours_ciphertext": "output", "openmls_ciphertext": "output",
        "ours_decrypt_roundtrip": "output", "openmls_decrypt_roundtrip": "output",
    },
    "reuse_guard": {
        "case": "name", "reuse_guard_secret_hex": "input", "key_schedule_nonce_hex": "input",
        "n_e": "input", "leaf_index_e": "input", "x": "input",
        "ours_prp_key_hex": "output", "openmls_prp_key_hex": "output",
        "ours_reuse_guard_hex": "output", "openmls_reuse_guard_hex": "output",
        "ours_recovered_leaf_index": "output", "openmls_recovered_leaf_index": "output",
    },
    "generation_id": {
        "case": "name", "generation_id_secret_hex": "input", "group_id_hex": "input",
        "epoch": "input", "generation": "input", "ratchet_type": "input",
        "ours_generation_id_hex": "output", "openmls_extracted_generation_id_hex": "output",
    },
}
"""Every field of every section and its kind: the checker requires exactly these."""


# --- the D4 mapping (not the text's) -------------------------------------------------------


def reverse_bits_in_bytes(x: int) -> int:
    """The uint32 whose big-endian bytes are x's with each byte's bits reversed (an
    involution)."""
    out = 0
    for shift in (24, 16, 8, 0):
        byte = (x >> shift) & 0xFF
        out |= int(f"{byte:08b}"[::-1], 2) << shift
    return out


def d4_encrypt(key: bytes, x: int) -> int:
    """D4: FF1 as openmls runs it, the numerals being the bits of each big-endian byte
    least significant first. NOT latest §5.6.1; kept to reproduce the openmls_* values."""
    return reverse_bits_in_bytes(prp_encrypt(key, reverse_bits_in_bytes(x)))


def d4_decrypt(key: bytes, y: int) -> int:
    """The inverse of `d4_encrypt` (openmls's decryption)."""
    return reverse_bits_in_bytes(prp_decrypt(key, reverse_bits_in_bytes(y)))


# --- field values --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str = ""
    deviation: str = ""


def _show(v: object) -> str:
    return v.hex() if isinstance(v, bytes) else repr(v)


def _text(got: object, want: object) -> Outcome:
    """The text's value `got` against the file's `want`."""
    if got == want:
        return Outcome(True, f"the text gives {_show(got)}")
    return Outcome(False, f"the text gives {_show(got)}, the file has {_show(want)}")


def _d4(alt: object, text: object, want: object) -> Outcome:
    """A value reproduced by the D4 mapping (`alt`), with the text's (`text`) beside it."""
    note = f"{_show(text)}, the same" if text == want else _show(text)
    if alt == want:
        return Outcome(True, f"D4 gives {_show(alt)} (the text on the same input: {note})",
                       "D4")
    return Outcome(False, f"D4 gives {_show(alt)}, the text {_show(text)}, "
                          f"the file has {_show(want)}")


def _hex(value: Any, field: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or value != value.lower():
        raise Mismatch(f"{field}: not a lowercase hex string")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise Mismatch(f"{field}: not hex") from None
    if length is not None and len(data) != length:
        raise Mismatch(f"{field}: {len(data)} bytes, the text needs {length}")
    return data


def _uint(value: Any, field: str, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise Mismatch(f"{field}: {value!r} is not a uint{bits}")
    return value


def _ok(detail: str) -> Outcome:
    return Outcome(True, detail)


def _valid(parse: Callable[[], object], detail: str) -> Outcome:
    """An input: `parse` validates it (raising Mismatch or MLSError), `detail` says how."""
    parse()
    return _ok(detail)


_Check = Callable[[], Outcome]


def _epoch_checks(cs: CipherSuite, c: dict[str, Any]) -> dict[str, _Check]:
    """latest §5.2: DeriveSecret(emulator_epoch_secret, label) for the five labels."""

    def secrets() -> Any:
        ees = _hex(c["emulator_epoch_secret_hex"], "emulator_epoch_secret_hex", cs.nh)
        return derive_epoch_secrets(cs, ees, PROFILE)

    checks: dict[str, _Check] = {
        "emulator_epoch_secret_hex": lambda: _valid(
            lambda: _hex(c["emulator_epoch_secret_hex"], "emulator_epoch_secret_hex", cs.nh),
            f"Kdf.Nh = {cs.nh} bytes"),
    }


    def output(name: str, field: str) -> _Check:
        return lambda: _text(getattr(secrets(), name), _hex(c[field], field))

    for name in _EPOCH_OUTPUTS:
        for field in (f"{name}_hex", f"openmls_extracted_{name}_hex"):
            checks[field] = output(name, field)
    return checks


def _prp_checks(cs: CipherSuite, c: dict[str, Any]) -> dict[str, _Check]:
    """latest §5.6.1: FF1-AES-128, radix 2, 32 numerals MSB first, empty tweak."""

    def key() -> bytes:
        return _hex(c["key_hex"], "key_hex", PRP_KEY_LENGTH)

    def pt() -> int:
        return _uint(c["plaintext"], "plaintext", 32)

    def ours_ct() -> int:
        return _uint(c["ours_ciphertext"], "ours_ciphertext", 32)

    def openmls_ct() -> int:
        return _uint(c["openmls_ciphertext"], "openmls_ciphertext", 32)

    return {
        "key_hex": lambda: _valid(key, "a 16-byte AES-128 key"),
        "plaintext": lambda: _ok(f"uint32 {pt()}"),
        "ours_ciphertext": lambda: _text(prp_encrypt(key(), pt()), ours_ct()),
        "ours_decrypt_roundtrip": lambda: _text(
            prp_decrypt(key(), ours_ct()),
            _uint(c["ours_decrypt_roundtrip"], "ours_decrypt_roundtrip", 32)),
        "openmls_ciphertext": lambda: _d4(
            d4_encrypt(key(), pt()), prp_encrypt(key(), pt()), openmls_ct()),
        "openmls_decrypt_roundtrip": lambda: _d4(
            d4_decrypt(key(), openmls_ct()), prp_decrypt(key(), openmls_ct()),
            _uint(c["openmls_decrypt_roundtrip"], "openmls_decrypt_roundtrip", 32)),
    }


def _no_rng(n: int, /) -> bytes:
    raise Mismatch("the vector gives x; no random draw is expected")


def _reuse_guard_checks(cs: CipherSuite, c: dict[str, Any]) -> dict[str, _Check]:
    """latest §5.6.2: prp_key = ExpandWithLabel(reuse_guard_secret, "reuse guard",
    key_schedule_nonce, 16), reuse_guard = SmallSpacePRP.Encrypt(prp_key, x), recovery
    x mod N_e."""

    def secret() -> bytes:
        rgs = _hex(c["reuse_guard_secret_hex"], "reuse_guard_secret_hex", cs.nh)
        return reuse_guard_key_secret(PROFILE, reuse_guard_secret=rgs)

    def nonce() -> bytes:
        return _hex(c["key_schedule_nonce_hex"], "key_schedule_nonce_hex")

    def n_e() -> int:
        n = _uint(c["n_e"], "n_e", 33)
        leaf_count_exponent(n)  # a power of two, at most 2^32 (ParameterError)
        return n

    def leaf() -> int:
        v = _uint(c["leaf_index_e"], "leaf_index_e", 32)
        if v >= n_e():
            raise Mismatch(f"leaf_index_e {v} is not below N_e {n_e()}")
        return v

    def x() -> int:
        v = _uint(c["x"], "x", 32)
        check_x(v, leaf(), n_e())  # x mod N_e == leaf_index_e (ParameterError)
        return v

    def prp_key() -> bytes:
        return derive_prp_key(cs, secret(), nonce(), profile=PROFILE)

    def guard(field: str) -> bytes:
        return _hex(c[field], field, 4)

    def check_nonce() -> Outcome:
        nn = cs.aead.nn
        got = nonce()
        if len(got) == nn:
            return _ok(f"AEAD.Nn = {nn} bytes")
        if len(got) == 32:
            return Outcome(True, f"32 bytes, the key schedule's nonce is AEAD.Nn = {nn} "
                                 "bytes", "D5")
        raise Mismatch(f"key_schedule_nonce_hex: {len(got)} bytes, not AEAD.Nn = {nn}")

    def text_recovered(field: str) -> int:
        return int(recover_leaf_index(cs, secret(), nonce(), guard(field), n_e(),
                                      profile=PROFILE))

    def ours_guard() -> Outcome:
        made = make_reuse_guard(cs, secret(), nonce(), LeafIndex(leaf()), n_e(), _no_rng,
                                x(), profile=PROFILE)
        return _text(made, guard("ours_reuse_guard_hex"))

    def openmls_guard() -> Outcome:
        return _d4(d4_encrypt(prp_key(), x()).to_bytes(4, "big"),
                   prp_encrypt(prp_key(), x()).to_bytes(4, "big"),
                   guard("openmls_reuse_guard_hex"))

    def openmls_recovered() -> Outcome:
        received = int.from_bytes(guard("openmls_reuse_guard_hex"), "big")
        return _d4(d4_decrypt(prp_key(), received) % n_e(),
                   text_recovered("openmls_reuse_guard_hex"),
                   _uint(c["openmls_recovered_leaf_index"], "openmls_recovered_leaf_index",
                         32))

    return {
        "reuse_guard_secret_hex": lambda: _valid(secret, f"Kdf.Nh = {cs.nh} bytes"),
        "key_schedule_nonce_hex": check_nonce,
        "n_e": lambda: _ok(f"N_e = 2^{leaf_count_exponent(n_e())}"),
        "leaf_index_e": lambda: _ok(f"leaf {leaf()} < N_e"),
        "x": lambda: _ok(f"x mod N_e = {x() % n_e()} = leaf_index_e"),
        "ours_prp_key_hex": lambda: _text(
            prp_key(), _hex(c["ours_prp_key_hex"], "ours_prp_key_hex")),
        "openmls_prp_key_hex": lambda: _text(
            prp_key(), _hex(c["openmls_prp_key_hex"], "openmls_prp_key_hex")),
        "ours_reuse_guard_hex": ours_guard,
        "ours_recovered_leaf_index": lambda: _text(
            text_recovered("ours_reuse_guard_hex"),
            _uint(c["ours_recovered_leaf_index"], "ours_recovered_leaf_index", 32)),
        "openmls_reuse_guard_hex": openmls_guard,
        "openmls_recovered_leaf_index": openmls_recovered,
    }


_RATCHET_TYPES: Final = {"application": RatchetType.APPLICATION,
                         "handshake": RatchetType.HANDSHAKE}


def _generation_id_checks(cs: CipherSuite, c: dict[str, Any]) -> dict[str, _Check]:
    """latest §5.6.3: ExpandWithLabel(generation_id_secret, "generation id",
    PrivateMessageContext{group_id, epoch, generation, ratchet_type}, Kdf.Nh)."""

    def secret() -> bytes:
        return _hex(c["generation_id_secret_hex"], "generation_id_secret_hex", cs.nh)

    def group_id() -> bytes:
        return _hex(c["group_id_hex"], "group_id_hex")

    def ratchet() -> RatchetType:
        name = c["ratchet_type"]
        if not isinstance(name, str) or name not in _RATCHET_TYPES:
            raise Mismatch(f"ratchet_type {name!r} is not application or handshake")
        return _RATCHET_TYPES[name]

    def gid() -> bytes:
        return generation_id(cs, secret(), _uint(c["generation"], "generation", 32),
                             ratchet(), profile=PROFILE, group_id=group_id(),
                             epoch=_uint(c["epoch"], "epoch", 64))

    return {
        "generation_id_secret_hex": lambda: _valid(secret, f"Kdf.Nh = {cs.nh} bytes"),
        "group_id_hex": lambda: _ok(f"{len(group_id())}-byte group_id"),
        "epoch": lambda: _ok(f"uint64 {_uint(c['epoch'], 'epoch', 64)}"),
        "generation": lambda: _ok(f"uint32 {_uint(c['generation'], 'generation', 32)}"),
        "ratchet_type": lambda: _ok(f"RatchetType {int(ratchet())}"),
        "ours_generation_id_hex": lambda: _text(
            gid(), _hex(c["ours_generation_id_hex"], "ours_generation_id_hex", cs.nh)),
        "openmls_extracted_generation_id_hex": lambda: _text(
            gid(), _hex(c["openmls_extracted_generation_id_hex"],
                        "openmls_extracted_generation_id_hex", cs.nh)),
    }


_SECTION_CHECKS: Final[dict[str, Callable[[CipherSuite, dict[str, Any]],
                                          dict[str, _Check]]]] = {
    "epoch_secrets": _epoch_checks,
    "small_space_prp": _prp_checks,
    "reuse_guard": _reuse_guard_checks,
    "generation_id": _generation_id_checks,
}


def _evaluate(check: _Check) -> Outcome:
    try:
        return check()
    except Mismatch as exc:
        return Outcome(False, str(exc))
    except MLSError as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}")
    except KeyError as exc:  # a field this one is computed from is missing
        return Outcome(False, f"needs the missing field {exc}")


def _metadata(doc: dict[str, Any]) -> dict[str, _Check]:
    def format_version() -> Outcome:
        if doc["format_version"] != 1:
            raise Mismatch(f"format_version {doc['format_version']!r}, this checker reads 1")
        return _ok("format 1")

    def ciphersuite() -> Outcome:
        if doc["ciphersuite"] != SUITE_NAME:
            raise Mismatch(f"ciphersuite {doc['ciphersuite']!r}, this checker reads "
                           f"{SUITE_NAME} (0x0001) only")
        return _ok("0x0001")

    def pinned() -> Outcome:
        sha = doc["openmls_main_pinned_sha"]
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise Mismatch(f"openmls_main_pinned_sha {sha!r} is not a commit id")
        return _ok(f"openmls {sha[:12]}")

    return {"format_version": format_version, "ciphersuite": ciphersuite,
            "openmls_main_pinned_sha": pinned}


def check_fields(doc: Any) -> list[tuple[str, str, str, str, Outcome]]:
    """Every field of the file: (section, case name, field, kind, outcome), in file
    order; sections' missing or unknown fields (and top-level ones) are failed
    outcomes. The file's own section "file" holds the metadata."""
    out: list[tuple[str, str, str, str, Outcome]] = []
    if not isinstance(doc, dict):
        return [("file", "", "", "metadata", Outcome(False, "not a JSON object"))]
    expected = set(METADATA) | set(SECTIONS)
    for key in sorted(set(doc) - expected):
        out.append(("file", "", key, "metadata", Outcome(False, f"unknown field {key!r}")))
    for key in sorted(expected - set(doc)):
        out.append(("file", "", key, "metadata", Outcome(False, f"missing field {key!r}")))
    meta = _metadata(doc)
    for key in METADATA:
        if key in doc:
            out.append(("file", "", key, "metadata", _evaluate(meta[key])))
    cs = get_suite(SUITE)
    for section in SECTIONS:
        cases = doc.get(section)
        if section in doc and (not isinstance(cases, list) or not cases):
            out.append((section, "", "", "input", Outcome(False, "not a non-empty list")))
            continue
        seen: set[str] = set()
        for i, case in enumerate(cases or []):
            name = case.get("case") if isinstance(case, dict) else None
            label = name if isinstance(name, str) and name else f"#{i}"
            if not isinstance(case, dict):
                out.append((section, label, "", "input", Outcome(False, "not an object")))
                continue
            fields = FIELDS[section]
            for key in sorted(set(case) - set(fields)):
                out.append((section, label, key, "input",
                            Outcome(False, f"unknown field {key!r}")))
            missing = set(fields) - set(case)
            checks = _SECTION_CHECKS[section](cs, case)
            for field, kind in fields.items():
                if field in missing:
                    outcome = Outcome(False, f"missing field {field!r}")
                elif field == "case":
                    unique = isinstance(name, str) and bool(name) and name not in seen
                    outcome = Outcome(unique, "a unique case name" if unique
                                      else "empty or repeated case name")
                    seen.add(label)
                else:
                    outcome = _evaluate(checks[field])
                out.append((section, label, field, kind, outcome))
    return out


def run(doc: Any) -> FileResult:
    """Check a vc-01 file: one CaseResult per field (section, kind, deviation), suite
    0x0001. `mlsvc vectors check vc-01 FILE`."""
    result = FileResult(FILE_STEM)
    for i, (section, case, field, kind, o) in enumerate(check_fields(doc)):
        where = f"{section}/{case}/{field}".replace("//", "/")
        result.cases.append(CaseResult(i, SUITE, o.ok, detail=f"{where}: {o.detail}",
                                       section=section, kind=kind, deviation=o.deviation))
    return result
