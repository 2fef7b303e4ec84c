"""A puncturable PRF of depth d: the Exporter Tree of draft-ietf-mls-extensions-09 §4.4,
generalised as DRAFT-00-PROFILE decision P2 says.

The tree is a full binary tree of depth d whose root is the key. Every node has two
children, derived as in the RFC 9420 §9 Secret Tree:

    left(N)  = ExpandWithLabel(N, "tree", "left",  KDF.Nh)
    right(N) = ExpandWithLabel(N, "tree", "right", KDF.Nh)

An input is a d-bit integer x, read most-significant bit first, 0 = left; the output
is the secret of leaf x. Puncturing x deletes every node on the root-to-x path and
keeps their siblings (the RFC 9420 §9.2 deletion schedule that §4.4 points to); later
evaluations of x fail with `PuncturedInputError`. The state is a prefix-free set of
(bit prefix, secret) pairs; evaluating costs at most d dictionary look-ups and d
ExpandWithLabel calls, puncturing 2d calls, and one puncture adds at most d entries
(the d siblings) and removes one.

The state's wire form (serialize / restore) is the one the virtual-clients editor's
copy defines (digest §3), in the TLS presentation language of RFC 9420 §2.1:

~~~ tls-presentation
struct { uint8 prefix_length; opaque prefix<V>; opaque node_secret<V>; } PPRFNode;
struct { PPRFNode nodes<V>; } PPRFState;
~~~

`prefix` holds the first `prefix_length` bits of the node's path packed MSB-first,
ceil(prefix_length / 8) bytes, unused low-order bits zero; nodes are prefix-free and
sorted lexicographically by prefix. Depth and suite are not part of the state: the
caller supplies them to `restore` (the Safe Exporter uses 16 and the group's suite,
virtual clients 32 and the emulation group's suite).

Python cannot wipe immutable `bytes`: "delete" here drops the last reference this
object holds, which is the most a pure-Python library can do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from mlsvc.checks import fail
from mlsvc.codec import Reader, Struct, Writer
from mlsvc.crypto.labels import expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import DecodeError, ParameterError, StateError
from mlsvc.ext.codepoints import LEFT_CONTEXT, RIGHT_CONTEXT, TREE_LABEL

MAX_DEPTH = 255
"""PPRFNode.prefix_length is a uint8."""


class PuncturedInputError(StateError):
    """The input was punctured: its leaf secret has been deleted (P2; OpenMLS's
    `PprfError::PuncturedInput`)."""

    def __init__(self, x: int) -> None:
        super().__init__(f"PPRF input {x} is punctured")
        self.input = x


def _prefix_bytes(length: int, prefix: int) -> bytes:
    """The first `length` bits, MSB-first, zero-padded to whole octets."""
    n = (length + 7) // 8
    return (prefix << (8 * n - length)).to_bytes(n, "big") if n else b""


@dataclass(frozen=True, slots=True)
class PPRFNode(Struct):
    """struct { uint8 prefix_length; opaque prefix<V>; opaque node_secret<V>; } PPRFNode;
    `prefix` is kept as the integer value of its `prefix_length` bits."""

    prefix_length: int
    prefix: int
    node_secret: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.prefix_length <= MAX_DEPTH or not (
            0 <= self.prefix < (1 << self.prefix_length)
        ):
            raise ParameterError("PPRFNode: prefix does not fit prefix_length")

    def write(self, w: Writer) -> None:
        w.u8(self.prefix_length)
        w.opaque(_prefix_bytes(self.prefix_length, self.prefix))
        w.opaque(self.node_secret)

    @classmethod
    def read(cls, r: Reader) -> Self:
        length = r.u8()
        packed = r.opaque()
        secret = r.opaque()
        if len(packed) != (length + 7) // 8:
            raise DecodeError(f"PPRFNode prefix of {len(packed)} bytes for {length} bits")
        value = int.from_bytes(packed, "big")
        pad = 8 * len(packed) - length
        if value & ((1 << pad) - 1):
            fail("EXT-PPRF-STATE", "PPRFNode prefix has non-zero padding bits")
        return cls(length, value >> pad, secret)


class PPRF:
    """The puncturable PRF state of one key (P2). Not thread-safe."""

    __slots__ = ("_nodes", "cs", "depth")

    def __init__(self, cs: CipherSuite, key: bytes, depth: int) -> None:
        if not 0 <= depth <= MAX_DEPTH:
            raise ParameterError(f"PPRF depth {depth} outside 0..{MAX_DEPTH}")
        if len(key) != cs.nh:
            raise ParameterError(f"PPRF key of {len(key)} bytes, want KDF.Nh = {cs.nh}")
        self.cs = cs
        self.depth = depth
        # (prefix_length, prefix) -> node secret; prefix-free at all times
        self._nodes: dict[tuple[int, int], bytes] = {(0, 0): key}

    # --- evaluation and puncturing --------------------------------------------------------

    def _check_input(self, x: int) -> None:
        if not isinstance(x, int) or not 0 <= x < (1 << self.depth):
            raise ParameterError(f"PPRF input {x!r} is not a {self.depth}-bit integer")

    def _ancestor(self, x: int) -> tuple[int, bytes] | None:
        """The retained node on x's path (at most one: the state is prefix-free)."""
        d = self.depth
        for length in range(d + 1):
            secret = self._nodes.get((length, x >> (d - length)))
            if secret is not None:
                return length, secret
        return None

    def _child(self, secret: bytes, bit: int) -> bytes:
        return expand_with_label(self.cs, secret, TREE_LABEL,
                                 RIGHT_CONTEXT if bit else LEFT_CONTEXT, self.cs.nh)

    def is_punctured(self, x: int) -> bool:
        self._check_input(x)
        return self._ancestor(x) is None

    def evaluate(self, x: int) -> bytes:
        """tree_node_[x]_secret, leaving the state as it is. PuncturedInputError when
        x was punctured."""
        self._check_input(x)
        found = self._ancestor(x)
        if found is None:
            raise PuncturedInputError(x)
        length, secret = found
        d = self.depth
        for level in range(length, d):
            secret = self._child(secret, (x >> (d - level - 1)) & 1)
        return secret

    def evaluate_and_puncture(self, x: int) -> bytes:
        """The leaf secret of x, then x punctured in the same walk (§4.4: an exported
        secret is "consumed" and its source key material deleted, RFC 9420 §9.2)."""
        self._check_input(x)
        found = self._ancestor(x)
        if found is None:
            raise PuncturedInputError(x)
        length, secret = found
        d = self.depth
        del self._nodes[(length, x >> (d - length))]
        for level in range(length, d):
            shift = d - level - 1
            bit = (x >> shift) & 1
            left = self._child(secret, 0)
            right = self._child(secret, 1)
            # keep the sibling (off the path) at prefix length level + 1
            self._nodes[(level + 1, (x >> shift) ^ 1)] = left if bit else right
            secret = right if bit else left
        return secret

    def puncture(self, x: int) -> None:
        """Delete x's leaf secret and its retained ancestor; PuncturedInputError when x
        is already punctured."""
        self.evaluate_and_puncture(x)

    # --- state --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._nodes)

    def nodes(self) -> list[PPRFNode]:
        """The state, sorted lexicographically by prefix."""
        d = self.depth
        keys = sorted(self._nodes, key=lambda k: k[1] << (d - k[0]))
        return [PPRFNode(length, prefix, self._nodes[(length, prefix)])
                for length, prefix in keys]

    def serialize(self) -> bytes:
        """struct { PPRFNode nodes<V>; } PPRFState;"""
        w = Writer()
        w.structs(self.nodes())
        return w.bytes()

    @classmethod
    def restore(cls, cs: CipherSuite, depth: int, data: bytes) -> PPRF:
        """Parse a PPRFState for a tree of this depth and suite. DecodeError when
        malformed, ValidationError EXT-PPRF-STATE when a node is deeper than `depth`,
        has the wrong secret length, or the nodes are unsorted or not prefix-free."""
        if not 0 <= depth <= MAX_DEPTH:
            raise ParameterError(f"PPRF depth {depth} outside 0..{MAX_DEPTH}")
        r = Reader(bytes(data))
        nodes = r.vector(PPRFNode.read)
        r.finish()
        end = 0  # first leaf not covered by the previous node
        for n in nodes:
            if n.prefix_length > depth:
                fail("EXT-PPRF-STATE", f"prefix of {n.prefix_length} bits in a depth-{depth} "
                                       "tree")
            if len(n.node_secret) != cs.nh:
                fail("EXT-PPRF-STATE", f"node secret of {len(n.node_secret)} bytes, want "
                                       f"{cs.nh}")
            start = n.prefix << (depth - n.prefix_length)
            if start < end:
                fail("EXT-PPRF-STATE", "nodes are not sorted or not prefix-free")
            end = (n.prefix + 1) << (depth - n.prefix_length)
        pprf = cls.__new__(cls)
        pprf.cs = cs
        pprf.depth = depth
        pprf._nodes = {(n.prefix_length, n.prefix): n.node_secret for n in nodes}
        return pprf

    def copy(self) -> PPRF:
        other = PPRF.__new__(PPRF)
        other.cs = self.cs
        other.depth = self.depth
        other._nodes = dict(self._nodes)
        return other


def input_from_bytes(data: bytes, depth: int) -> int:
    """The PPRF input given by the first `depth` bits of `data`, MSB-first (P3: for
    depth 32, the first 4 bytes of pprf_input read big-endian)."""
    n = (depth + 7) // 8
    if len(data) < n:
        raise ParameterError(f"{len(data)} bytes cannot give a {depth}-bit PPRF input")
    return int.from_bytes(data[:n], "big") >> (8 * n - depth)
