"""draft-ietf-mls-extensions-09 mechanisms that draft-ietf-mls-virtual-clients-00 needs.

Read as DRAFT-00-PROFILE decisions P1 (the -09 semantics: uint16 ComponentID) and P2
(the §4.4 Exporter Tree as a generic puncturable PRF of depth d). RFC 9420 code never
imports this package; it hooks in only through the registries RFC 9420 code exposes
(`register_proposal_class`) and `GroupConfig.additional_epoch_secrets`.

Modules (import them directly; this package re-exports nothing):
- `codepoints`: the one table of code points and labels (configurable where -09 says
  "suggested"), with the ext validation check IDs.
- `components`: ComponentID, ComponentData, AppDataDictionary, ComponentsList, the
  app_data_dictionary extension and the capability checks (§4.6, §5).
- `app_data_update`: the AppDataUpdate proposal (§4.7): wire form, list validation and
  application to the GroupContext extensions.
- `pprf`: the puncturable PRF (P2), its TLS-encoded state.
- `safe_export`: application_export_secret and SafeExportSecret (§4.4).
- `safe_aad`: SafeAAD framing (§4.9) and a thin layer over `Group` to send and receive it.
"""
