"""`mlsvc study costs` (docs/COSTS.md) on a tiny configuration (U in {2, 4}, D in {1, 2}):
the files are written, and the measured numbers satisfy relations that must hold.

The expected values are computed here from the objects and from RFC 9420 tree math
(array width, copath), never copied from the study's own output: leaf counts of the
trees the study builds, the width of a tree of that many leaves, the copath nodes of
the committer that hold members, the DS's fan-out rule for D emulators."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mlsvc.cli import main
from mlsvc.study import (
    PLAIN,
    VIRTUAL,
    CostsConfig,
    CostsResult,
    World,
    churn_plain,
    churn_virtual,
    run,
    select,
)
from mlsvc.tree.math import copath, is_in_subtree, leaf_to_node, node_width
from mlsvc.types import LeafCount, LeafIndex

USERS = (2, 4)
DEVICES = (1, 2)
GROUPS = (1, 3)
TABLES = ("tree", "commit", "welcome", "update", "emulation", "churn")
PLOTS = ("tree", "commit", "welcome", "update", "churn", "emulation")


def width(leaves: int) -> int:
    n = 1
    while n < leaves:
        n *= 2
    return n


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[CostsResult, Path]:
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("costs")
    result = run(CostsConfig(users=USERS, devices=DEVICES, groups=GROUPS, churn_users=(4,),
                             churn_events=3, reps=2, out=out, progress=False))
    return result, out


def test_writes_every_csv_and_png(study: tuple[CostsResult, Path]) -> None:
    result, out = study
    for name in TABLES:
        with (out / f"{name}.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == len(result.tables()[name]) > 0
    for name in PLOTS:
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < 200_000


def test_tree_leaves_and_width_from_the_built_trees(study: tuple[CostsResult, Path]) -> None:
    result, _ = study
    for u in USERS:
        for d in DEVICES:
            for variant, leaves in ((PLAIN, u * d), (VIRTUAL, u)):
                (row,) = select(result.tree, users=u, devices=d, variant=variant)
                w = World(variant, u, d, seed=7)
                w.build()
                assert w.members[0].group.tree.member_count() == leaves == row.leaves
                # RFC 9420 Appendix C: the array of `leaves` leaves has node_width
                # entries; after the build only the leaves are non-blank
                assert row.nodes == node_width(LeafCount(leaves))
                assert row.non_blank_nodes == leaves
            plain, virtual = (select(result.tree, users=u, devices=d, variant=v)[0]
                              for v in (PLAIN, VIRTUAL))
            if d > 1:
                assert plain.ratchet_tree_bytes > virtual.ratchet_tree_bytes


def test_commit_encrypts_once_per_populated_copath_node(
        study: tuple[CostsResult, Path]) -> None:
    """With the committer's copath filled, its UpdatePath carries one ciphertext per
    copath node that has a member under it (the resolution of each is that node)."""
    result, _ = study
    for row in result.commit:
        n, x = row.leaves, row.leaves - 1
        full = width(n)
        expected = sum(
            1 for c in copath(leaf_to_node(LeafIndex(x)), LeafCount(full))
            if any(is_in_subtree(leaf_to_node(LeafIndex(i)), c) for i in range(n)))
        assert row.path_ciphertexts == expected
        # right after the build every parent is blank: one ciphertext per other leaf
        assert row.sparse_path_ciphertexts == n - 1
        assert row.commit_bytes > 0 and row.commit_ms > 0 and row.process_ms > 0
        if row.variant == VIRTUAL:
            # the DS delivers it to the other users' D emulators and the D-1 siblings
            assert row.ds_deliveries == (row.users - 1) * row.devices + row.devices - 1
        else:
            assert row.ds_deliveries == row.leaves - 1


def test_welcome_reaches_every_device(study: tuple[CostsResult, Path]) -> None:
    result, _ = study
    for row in result.welcome:
        assert row.welcome_deliveries == row.devices
        if row.variant == PLAIN:
            assert (row.key_packages, row.emulation_messages) == (row.devices, 0)
        else:  # one KeyPackage, announced by one KeyPackageUpload emulation commit
            assert (row.key_packages, row.emulation_messages) == (1, 1)


def test_emulation_traffic_follows_the_fan_out_rule(study: tuple[CostsResult, Path]) -> None:
    result, _ = study
    for row in result.emulation:
        siblings = row.devices - 1
        emu, higher = {
            "key_package_upload": (1, 0), "emulation_commit": (1, 0), "vc_commit": (0, 1),
            "vc_update": (0, 1), "application_message": (0, 1), "external_join": (1, 1),
        }[row.operation]
        assert (row.emulation_messages, row.higher_messages) == (emu, higher)
        assert row.emulation_deliveries == emu * siblings
        assert row.sibling_copies == higher * siblings


def test_update_cost_adds_up(study: tuple[CostsResult, Path]) -> None:
    result, _ = study
    for row in result.update:
        (commit,) = select(result.commit, users=row.users, devices=row.devices,
                           variant=row.variant)
        if row.variant == PLAIN:
            assert row.messages == row.groups
            assert row.bytes_sent == row.groups * commit.commit_bytes
        else:
            (emu,) = select(result.emulation, users=row.users, devices=row.devices,
                            operation="emulation_commit")
            assert row.messages == 1 + row.groups
            assert row.bytes_sent == emu.emulation_bytes + row.groups * commit.commit_bytes


def test_churn_blanks_plain_never_virtual() -> None:
    """A plain device removal blanks parents of the higher-level tree; replacing an
    emulator leaves none (the user's leaf commits with a path, §4.3)."""
    for d in DEVICES:
        plain = churn_plain(4, d, 3, seed=3)
        virtual = churn_virtual(4, d, 3, seed=3)
        assert [r.event for r in plain] == [r.event for r in virtual] == [0, 1, 2, 3]
        assert all(r.leaves == 4 * d for r in plain)
        assert all(r.leaves == 4 for r in virtual)
        assert plain[0].blank_parents == 0 and virtual[0].blank_parents == 0
        assert plain[-1].blank_parents > 0
        assert all(r.blank_parents == 0 and r.blank_nodes == 0 for r in virtual)
        assert all(r.emulation_bytes > 0 for r in virtual[1:])


def test_cli_writes_csv_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["study", "costs", "--users", "2", "--devices", "2", "--groups", "1",
               "--churn-users", "2", "--churn-events", "1", "--reps", "1",
               "--out", str(tmp_path), "--no-plots"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.csv" for t in TABLES)
    assert "== tree ==" in capsys.readouterr().out


def test_config_bounds() -> None:
    with pytest.raises(ValueError):
        CostsConfig(users=(257,))
    with pytest.raises(ValueError):
        CostsConfig(devices=(6,))
