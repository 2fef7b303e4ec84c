"""One epoch of a member's group state (RFC 9420 §8-§9), as plain data.

`EpochState` is what a member holds between messages: the GroupContext, the ratchet
tree and its private part, the transcript hashes, the epoch secrets it still needs
(§9.2: joiner_secret, epoch_secret, welcome_secret and encryption_secret are not kept:
the encryption secret lives on only inside the secret tree, which deletes as it goes),
the proposal cache, and a short history of resumption PSKs (§8.6).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlsvc.crypto.labels import derive_secret
from mlsvc.crypto.suites import CipherSuite
from mlsvc.group.config import Identity
from mlsvc.group.proposals import ResolvedProposal
from mlsvc.messages.group_info import GroupContext
from mlsvc.schedule.key_schedule import EpochSecrets
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.secret_tree import SecretTree
from mlsvc.tree.treekem import TreePrivateKeys
from mlsvc.types import LeafIndex


@dataclass(frozen=True)
class EpochKeys:
    """The epoch secrets a member keeps after the epoch starts (§8, §9.2)."""

    sender_data_secret: bytes
    exporter_secret: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    epoch_authenticator: bytes
    init_secret: bytes
    # DeriveSecret(epoch_secret, label) for each label the application asked for
    # (GroupConfig.additional_epoch_secrets), e.g. the extensions draft's
    # "application_export" (draft-ietf-mls-extensions-09 §4.4).
    additional: dict[bytes, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, s: EpochSecrets, cs: CipherSuite, labels: tuple[bytes, ...] = ()) -> EpochKeys:
        extra = {label: derive_secret(cs, s.epoch_secret, label) for label in labels}
        return cls(s.sender_data_secret, s.exporter_secret, s.external_secret,
                   s.confirmation_key, s.membership_key, s.resumption_psk,
                   s.epoch_authenticator, s.init_secret, extra)


@dataclass
class EpochState:
    cs: CipherSuite
    context: GroupContext
    tree: RatchetTree
    keys: TreePrivateKeys
    identity: Identity
    interim_transcript_hash: bytes
    confirmation_tag: bytes
    secrets: EpochKeys
    secret_tree: SecretTree
    proposals: dict[bytes, ResolvedProposal] = field(default_factory=dict)
    # (group_id, epoch) -> resumption_psk of that epoch (§8.6), this epoch included
    resumption_psks: dict[tuple[bytes, int], bytes] = field(default_factory=dict)
    # HPKE key pairs of our own Update proposals not yet committed: public -> private
    pending_update_keys: dict[bytes, bytes] = field(default_factory=dict)
    # the identity (signature key) an Update carries, by the Update's encryption key:
    # adopted only when that Update is committed (§12.1.2), never before
    pending_update_identities: dict[bytes, Identity] = field(default_factory=dict)

    @property
    def own_leaf(self) -> LeafIndex:
        return self.keys.leaf_index

    def remember_resumption_psk(self, history: int) -> None:
        key = (self.context.group_id, self.context.epoch)
        self.resumption_psks[key] = self.secrets.resumption_psk
        while len(self.resumption_psks) > history:
            del self.resumption_psks[next(iter(self.resumption_psks))]
