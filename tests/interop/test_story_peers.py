"""The demo's story (mlsvc.story) as `mlsvc demo` runs it: alice's devices in three groups
with an mls-rs, a ts-mls and one of our clients in each. Every step's checks hold: the
peers of both other engines see alice as one member at one leaf, read every device's
messages, agree on the epoch authenticator (mls-rs: on an exported secret), process the
external join; the removed tablet reads nothing sent after its removal."""

from __future__ import annotations

from functools import cache

from mlsvc import story
from tests.interop.conftest import require


@cache
def _report() -> story.StoryReport:
    for engine in ("mls-rs", "ts-mls"):
        require(engine)
    return story.run_story(story.ENGINES)


def test_the_story_holds_with_peers_of_three_engines() -> None:
    r = _report()
    assert r.ok, r.failures
    doc = r.as_json()
    assert doc["peers"]["engines"] == ["mls-rs", "ts-mls", "ours"]
    assert {c["engine"] for c in doc["peers"]["clients"]} == {"mls-rs", "ts-mls", "ours"}
    assert [g["name"] for g in doc["groups"]] == ["family", "work", "club"]
    assert [g["creator"] for g in doc["groups"][:2]] == ["bob (mls-rs)", "carol (ts-mls)"]
    assert all(g["agree"] and all(p["member"] for p in g["peers"]) for g in doc["groups"])
    assert doc["groups"][2]["alice_joined_by"] == "external commit by laptop"
    assert doc["devices_added"] == ["phone", "laptop", "tablet", "desktop"]
    assert doc["devices_removed"] == ["tablet"]
    assert doc["removed_device_unreadable"] and doc["removed_device"]["read"] == 0


def test_every_peer_reads_every_device_and_sees_one_member() -> None:
    text = "\n".join(line.text() for line in _report().lines)
    assert "bob, carol, dave read it" in text
    assert "alice is leaf 3 (one member) for bob, carol, dave" in text
    assert "+ bob by exporter: agree" in text  # mls-rs reports no epoch authenticator
    assert "DISAGREE" not in text


def test_the_devices_side_replays_exactly() -> None:
    """alice's devices draw from the seed; the first line (the emulation group alone) is
    the same as with our engine as the only peer."""
    ours = story.run_story(("ours",))
    assert ours.lines[0].text() == _report().lines[0].text()
    assert ours.removed["read"] == _report().removed["read"] == 0
