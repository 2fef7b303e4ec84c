"""Properties of the puncturable PRF (profile P2; extensions-09 §4.4 at depth d).

For random keys, depths, suites and puncture sequences:
- every unpunctured input evaluates to the value of the unpunctured tree (and, for a
  sample, to the independent reference of test_ext_reference);
- every punctured input fails with PuncturedInputError, also after serialize/restore;
- the state stays prefix-free, and each puncture adds at most d entries (d siblings
  in, one ancestor out);
- serialize/restore round-trips byte for byte and equals the reference encoding.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from mlsvc.crypto.suites import get_suite
from mlsvc.ext.pprf import PPRF, PuncturedInputError
from tests.unit import test_ext_reference as ref


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, bytes, int, list[int], list[int]]:
    suite = draw(st.sampled_from([1, 1, 1, 4, 7]))  # the three KDF hashes
    key = draw(st.binary(min_size=ref.nh(suite), max_size=ref.nh(suite)))
    depth = draw(st.integers(min_value=1, max_value=34))
    inputs = st.integers(min_value=0, max_value=(1 << depth) - 1)
    punctures = draw(st.lists(inputs, max_size=12, unique=True))
    probes = draw(st.lists(inputs, max_size=12))
    return suite, key, depth, punctures, probes


def _prefix_free(p: PPRF) -> bool:
    nodes = p.nodes()
    d = p.depth
    spans = [(n.prefix << (d - n.prefix_length), (n.prefix + 1) << (d - n.prefix_length))
             for n in nodes]
    return all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@given(scenarios())
def test_puncture_sequences(s: tuple[int, bytes, int, list[int], list[int]]) -> None:
    suite, key, depth, punctures, probes = s
    cs = get_suite(suite)
    fresh = PPRF(cs, key, depth)
    p = PPRF(cs, key, depth)
    for x in punctures:
        size = len(p)
        assert p.evaluate_and_puncture(x) == fresh.evaluate(x)
        assert len(p) - size <= depth - 1  # d added, one removed
        assert _prefix_free(p)
    assert len(p) <= 1 + depth * len(punctures)
    punctured = set(punctures)
    # siblings of punctured leaves are the inputs most likely to be damaged
    candidates = probes + [x ^ 1 for x in punctures] + punctures
    if depth <= 6:
        candidates += list(range(1 << depth))
    restored = PPRF.restore(cs, depth, p.serialize())
    assert restored.serialize() == p.serialize()
    for x in candidates:
        for q in (p, restored):
            if x in punctured:
                assert q.is_punctured(x)
                try:
                    q.evaluate(x)
                except PuncturedInputError:
                    pass
                else:
                    raise AssertionError(f"punctured input {x} evaluated")
            else:
                assert q.evaluate(x) == fresh.evaluate(x)


@given(scenarios())
def test_against_the_reference(s: tuple[int, bytes, int, list[int], list[int]]) -> None:
    suite, key, depth, punctures, probes = s
    p = PPRF(get_suite(suite), key, depth)
    for x in punctures[:4]:
        p.puncture(x)
    assert p.serialize() == ref.state_bytes(suite, key, depth, punctures[:4])
    for x in probes[:3]:
        if x not in punctures[:4]:
            assert p.evaluate(x) == ref.leaf(suite, key, depth, x)
