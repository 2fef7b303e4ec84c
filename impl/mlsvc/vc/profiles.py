"""Which text a virtual-client primitive follows: draft-00 (as DRAFT-00-PROFILE reads it)
or the authors' later text ("latest", shared/spec/draft-ietf-mls-virtual-clients-latest.md).

The default everywhere is `Profile.DRAFT_00`, so code that does not name a profile keeps
draft-00's behaviour. `Profile.LATEST` selects the later text's version of the
primitives that its known-answer values (the public vc-01 vectors,
vectors/third-party/havenmessenger-interop_vc-01-vectors.json, `mlsvc vectors check
vc-01 FILE`) exercise. Each lives in one place, named there by its section in both texts
(`SECTIONS` below restates them):

- the epoch secrets: draft-00 §5.2 has four; latest §5.2 five, the fifth being
  reuse_guard_secret = DeriveSecret(emulator_epoch_secret, "Reuse Guard")
  (`mlsvc.vc.epoch.derive_epoch_secrets`);
- the reuse guard's PRP key: draft-00 §5.8 (P8, Q5) from leaf_node_secret; latest
  §5.6.2 from reuse_guard_secret of epoch e (`mlsvc.vc.reuse_guard.
  reuse_guard_key_secret`, then `derive_prp_key`);
- the generation ID's context: draft-00 §5.9 (Q4) generation, ratchet_type; latest
  §5.6.3 group_id, epoch, generation, ratchet_type
  (`mlsvc.vc.generation_id.private_message_context`);
- the small-space PRP: draft-00 §5.7 (P10 fixes it); latest §5.6.1 (the text fixes it)
  (`mlsvc.vc.ff1.prp_encrypt` / `prp_decrypt`).

The small-space PRP takes no profile: the later text's FF1 instantiation (AES-128, radix
2, numeral strings of length 32, empty tweak, a uint32's bits listed most significant
first, big-endian where 4 bytes are needed) is exactly the one profile P10 chose for
draft-00, which leaves it unspecified. The key-schedule nonce is the same in both texts
("the nonce provided by the key schedule for encrypting this message"; Q5: before the
reuse_guard XOR, used raw).

These primitives take the profile as a parameter. The rest of the later text is
selected by the virtual client's profile (`VirtualClientConfig.profile`, recorded in the
emulation group): the Virtual Client Operation Secret Tree (`mlsvc.vc.operation_tree`,
latest §5.2), the later DerivationInfoTBE and KeyPackageUpload, external joins without
an action, group creation, the removal's fresh KeyPackages; docs/PROFILES.md lists every
difference and where it lives. The executable model reads both (model/, Config.profile).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from mlsvc.errors import ParameterError


class Profile(StrEnum):
    """The text a primitive follows. The values are the names the model and the
    command line use ("draft-00", "latest")."""

    DRAFT_00 = "draft-00"
    LATEST = "latest"



DEFAULT_PROFILE: Final = Profile.DRAFT_00
"""Nothing that does not ask for the later text changes behaviour."""


def profile_of(value: Profile | str) -> Profile:
    """A Profile from itself or its name ("draft-00" | "latest"); ParameterError for
    anything else."""
    try:
        return Profile(value)
    except ValueError:
        names = ", ".join(repr(p.value) for p in Profile)
        raise ParameterError(f"unknown profile {value!r} (one of {names})") from None


SECTIONS: Final[dict[str, dict[Profile, str]]] = {
    "epoch_secrets": {Profile.DRAFT_00: "§5.2", Profile.LATEST: "§5.2"},
    "small_space_prp": {Profile.DRAFT_00: "§5.7 (P10)", Profile.LATEST: "§5.6.1"},
    "reuse_guard": {Profile.DRAFT_00: "§5.8 (P8, P9, Q5)", Profile.LATEST: "§5.6.2"},
    "generation_id": {Profile.DRAFT_00: "§5.9 (Q4, P11)", Profile.LATEST: "§5.6.3"},
}
"""Where each primitive is specified in each text (sections of the rendered drafts:
draft-ietf-mls-virtual-clients-00 and the latest text, whose "Client emulation" is §5)."""
