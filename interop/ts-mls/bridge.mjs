// A test-only bridge to ts-mls for the mlsvc interop tests (tests/interop/).
//
// Protocol: one JSON object per line on stdin, one JSON object per line on stdout.
// A request is {"seq": n, "verb": "...", ...args}; the answer is
// {"seq": n, "ok": true, ...result} or {"seq": n, "ok": false, "error": "<JS message>"}.
// Every byte string crosses as lowercase hex. Each MLS client is addressed by a
// caller-chosen string id ("client"); one client is one member of one group.
// Every value that goes on the wire is an RFC 9420 MLSMessage (section 6).
//
// Requests are served strictly in order (one at a time), so the caller can pipeline.
//
// The external_pub shim. RFC 9420 section 12.4.3.2 defines the external_pub extension's
// data as `struct { HPKEPublicKey external_pub; }` with `opaque HPKEPublicKey<V>`
// (section 5.1.1): the key with a varint length prefix. ts-mls 1.6.4 writes and reads
// the bare key (fixed upstream in LukaJCB/ts-mls PR #449, after 1.6.4). With
// `external_pub: "rfc"` (the default) the bridge translates at the boundary: it signs
// GroupInfos with the RFC encoding, and before an external join it checks the GroupInfo
// signature over the RFC bytes itself, then hands ts-mls the bare key. With
// `external_pub: "native"` ts-mls's own encoding goes through untouched.

import * as readline from "node:readline";
import * as mls from "ts-mls";
import { encode as tlsEncode } from "ts-mls/codec/tlsEncoder.js";
import { decodeVarLenData, varLenDataEncoder } from "ts-mls/codec/variableLength.js";
import { createGroupInfo } from "ts-mls/createCommit.js";
import { verifyGroupInfoSignature } from "ts-mls/groupInfo.js";
import {
  decodeRatchetTree, getSignaturePublicKeyFromLeafIndex, ratchetTreeEncoder,
} from "ts-mls/ratchetTree.js";

const clients = new Map(); // id -> {suite, impl, credential, kp, state, psks}
const impls = new Map(); // suite id -> CiphersuiteImpl

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s ?? "", "hex"));
const b64 = (b) => Buffer.from(b).toString("base64");

async function impl(suite) {
  if (!impls.has(suite)) {
    const name = Object.keys(mls.ciphersuites).find((k) => mls.ciphersuites[k] === suite);
    if (name === undefined) throw new Error(`unknown cipher suite ${suite}`);
    impls.set(suite, await mls.getCiphersuiteImpl(mls.getCiphersuiteFromName(name)));
  }
  return impls.get(suite);
}

function client(id) {
  const c = clients.get(id);
  if (c === undefined) throw new Error(`no client ${id}`);
  return c;
}

function member(id) {
  const c = client(id);
  if (c.state === undefined) throw new Error(`client ${id} is not in a group`);
  return c;
}

function decode(hexMessage, wireformat) {
  const decoded = mls.decodeMlsMessage(unhex(hexMessage), 0);
  if (decoded === undefined) throw new Error("cannot decode MLSMessage");
  const [msg] = decoded;
  if (wireformat !== undefined && msg.wireformat !== wireformat) {
    throw new Error(`expected ${wireformat}, got ${msg.wireformat}`);
  }
  return msg;
}

const encode = (msg) => hex(mls.encodeMlsMessage(msg));
const pskIndex = (c) => mls.makePskIndex(c.state, c.psks);

async function newClient(args) {
  const suite = args.suite;
  const cs = await impl(suite);
  const credential = { credentialType: "basic", identity: unhex(args.identity) };
  const old = clients.get(args.client);
  const c = { suite, impl: cs, credential, psks: old?.psks ?? {} };
  c.kp = await mls.generateKeyPackage(credential, mls.defaultCapabilities(), mls.defaultLifetime,
    [], cs);
  clients.set(args.client, c);
  return c;
}

// GroupInfo (section 12.4.3) with external_pub and ratchet_tree extensions.
async function groupInfo(c, mode = "rfc") {
  let gi;
  if (mode === "native") {
    gi = await mls.createGroupInfoWithExternalPubAndRatchetTree(c.state, [], c.impl);
  } else {
    const pair = await c.impl.hpke.deriveKeyPair(c.state.keySchedule.externalSecret);
    const pub = await c.impl.hpke.exportPublicKey(pair.publicKey);
    gi = await createGroupInfo(c.state.groupContext, c.state.confirmationTag, c.state, [
      { extensionType: "external_pub", extensionData: tlsEncode(varLenDataEncoder)(pub) },
      { extensionType: "ratchet_tree",
        extensionData: tlsEncode(ratchetTreeEncoder)(c.state.ratchetTree) },
    ], c.impl);
  }
  return encode({ version: "mls10", wireformat: "mls_group_info", groupInfo: gi });
}

// An RFC-encoded GroupInfo as ts-mls 1.6.4 expects it, plus the CiphersuiteImpl to give
// joinGroupExternal: its check of this GroupInfo's signature is answered by our check
// over the original bytes; every other signature check goes to ts-mls unchanged.
async function nativeGroupInfo(gi, cs) {
  const treeExt = gi.extensions.find((e) => e.extensionType === "ratchet_tree");
  if (treeExt === undefined) throw new Error("GroupInfo has no ratchet_tree extension");
  const parsedTree = decodeRatchetTree(treeExt.extensionData, 0)?.[0];
  if (parsedTree === undefined) throw new Error("cannot decode the ratchet_tree extension");
  const signerKey = getSignaturePublicKeyFromLeafIndex(parsedTree, gi.signer);
  if (!(await verifyGroupInfoSignature(gi, signerKey, cs.signature))) {
    throw new Error("GroupInfo signature does not verify");
  }
  const extensions = gi.extensions.map((e) => {
    if (e.extensionType !== "external_pub") return e;
    const inner = decodeVarLenData(e.extensionData, 0);
    if (inner === undefined || inner[1] !== e.extensionData.length) {
      throw new Error("external_pub is not an RFC 9420 HPKEPublicKey<V>");
    }
    return { ...e, extensionData: inner[0] };
  });
  const original = gi.signature;
  const signature = {
    ...cs.signature,
    verify: async (pk, message, sig) =>
      sig === original ? true : cs.signature.verify(pk, message, sig),
  };
  return [{ ...gi, extensions }, { ...cs, signature }];
}

function proposal(c, p) {
  switch (p.type) {
    case "add": {
      const kp = decode(p.key_package, "mls_key_package").keyPackage;
      return { proposalType: "add", add: { keyPackage: kp } };
    }
    case "remove":
      return { proposalType: "remove", remove: { removed: p.leaf } };
    case "psk": {
      const nonce = c.impl.rng.randomBytes(c.impl.kdf.size);
      const id = p.epoch === undefined
        ? { psktype: "external", pskId: unhex(p.psk_id), pskNonce: nonce }
        : { psktype: "resumption", usage: "application", pskGroupId: c.state.groupContext.groupId,
            pskEpoch: BigInt(p.epoch), pskNonce: nonce };
      return { proposalType: "psk", psk: { preSharedKeyId: id } };
    }
    default:
      throw new Error(`unsupported proposal type ${p.type}`);
  }
}

function describe(c) {
  const s = c.state;
  const members = [];
  s.ratchetTree.forEach((n, i) => {
    if (n !== undefined && n.nodeType === "leaf") {
      const cred = n.leaf.credential;
      members.push([i / 2, hex(cred.identity ?? new Uint8Array()), hex(n.leaf.signaturePublicKey)]);
    }
  });
  return {
    epoch: Number(s.groupContext.epoch),
    own_leaf: s.privatePath.leafIndex,
    tree_hash: hex(s.groupContext.treeHash),
    epoch_authenticator: hex(s.keySchedule.epochAuthenticator),
    active: s.groupActiveState.kind === "active",
    members,
  };
}

const verbs = {
  async ping() {
    return { ts_mls: "1.6.4", node: process.version };
  },

  // KeyPackage (RFC 9420 section 10) for a (new) client; its private keys stay here.
  async key_package(a) {
    const c = await newClient(a);
    return { key_package: encode({ version: "mls10", wireformat: "mls_key_package",
      keyPackage: c.kp.publicPackage }) };
  },

  // A one-member group (section 11).
  async create(a) {
    const c = await newClient(a);
    c.state = await mls.createGroup(unhex(a.group_id), c.kp.publicPackage, c.kp.privatePackage,
      [], c.impl);
    return describe(c);
  },

  // Join from a Welcome (section 12.4.3.1) with the client's last KeyPackage.
  async join(a) {
    const c = client(a.client);
    const welcome = decode(a.welcome, "mls_welcome").welcome;
    c.state = await mls.joinGroup(welcome, c.kp.publicPackage, c.kp.privatePackage,
      mls.makePskIndex(undefined, c.psks), c.impl);
    return describe(c);
  },

  // Join by external commit (section 12.4.3.2); resync=true removes our prior leaf.
  async external_join(a) {
    const c = await newClient(a);
    let gi = decode(a.group_info, "mls_group_info").groupInfo;
    let cs = c.impl;
    if (a.external_pub !== "native") [gi, cs] = await nativeGroupInfo(gi, cs);
    const res = await mls.joinGroupExternal(gi, c.kp.publicPackage, c.kp.privatePackage,
      a.resync === true, cs);
    c.state = res.newState;
    const commit = encode({ version: "mls10", wireformat: "mls_public_message",
      publicMessage: res.publicMessage });
    return { commit, ...describe(c) };
  },

  // One proposal (section 12.1) as PublicMessage or PrivateMessage.
  async propose(a) {
    const c = member(a.client);
    const res = await mls.createProposal(c.state, a.public === true, proposal(c, a.proposal),
      c.impl);
    c.state = res.newState;
    return { message: encode(res.message) };
  },

  // A Commit (section 12.4) of the cached proposals plus `proposals` by value.
  // The committer moves to the new epoch at once (the tests' DS accepts everything).
  async commit(a) {
    const c = member(a.client);
    const extra = (a.proposals ?? []).map((p) => proposal(c, p));
    const res = await mls.createCommit(
      { state: c.state, cipherSuite: c.impl, pskIndex: pskIndex(c) },
      { extraProposals: extra, wireAsPublicMessage: a.public === true,
        ratchetTreeExtension: a.ratchet_tree !== false },
    );
    c.state = res.newState;
    const welcome = res.welcome === undefined ? null
      : encode({ version: "mls10", wireformat: "mls_welcome", welcome: res.welcome });
    const out = { commit: encode(res.commit), welcome, ...describe(c) };
    out.group_info = out.active ? await groupInfo(c) : null;
    return out;
  },

  async encrypt(a) {
    const c = member(a.client);
    const res = await mls.createApplicationMessage(c.state, unhex(a.data), c.impl,
      unhex(a.authenticated_data));
    c.state = res.newState;
    return { message: encode({ version: "mls10", wireformat: "mls_private_message",
      privateMessage: res.privateMessage }) };
  },

  // Process a PublicMessage or PrivateMessage (sections 6, 12.4.2).
  async process(a) {
    const c = member(a.client);
    const msg = decode(a.message);
    if (msg.wireformat !== "mls_public_message" && msg.wireformat !== "mls_private_message") {
      throw new Error(`cannot process ${msg.wireformat}`);
    }
    // Not mls.processMessage: in 1.6.4 it hands PrivateMessages an empty PSK index, so a
    // PSK commit sent as PrivateMessage would fail (an API slip, not a protocol issue).
    const res = msg.wireformat === "mls_public_message"
      ? await mls.processPublicMessage(c.state, msg.publicMessage, pskIndex(c), c.impl)
      : await mls.processPrivateMessage(c.state, msg.privateMessage, pskIndex(c), c.impl);
    const before = Number(c.state.groupContext.epoch);
    c.state = res.newState;
    if (res.kind === "applicationMessage") {
      return { kind: "application", data: hex(res.message), ...describe(c) };
    }
    const d = describe(c);
    return { kind: d.epoch === before && d.active ? "proposal" : "commit", ...d };
  },

  // MLS-Exporter (section 8.5); labels are ASCII text.
  async export(a) {
    const c = member(a.client);
    const label = Buffer.from(unhex(a.label)).toString("latin1");
    const secret = await mls.mlsExporter(c.state.keySchedule.exporterSecret, label,
      unhex(a.context), a.length, c.impl);
    return { secret: hex(secret) };
  },

  async state(a) {
    return describe(member(a.client));
  },

  // The ratchet tree (section 12.4.3.3 encoding), trailing blank nodes cut.
  async ratchet_tree(a) {
    const tree = member(a.client).state.ratchetTree.slice();
    while (tree.length > 0 && tree[tree.length - 1] === undefined) tree.pop();
    return { tree: hex(tlsEncode(ratchetTreeEncoder)(tree)) };
  },

  async group_info(a) {
    return { group_info: await groupInfo(member(a.client), a.external_pub) };
  },

  // External PSKs known to a client (section 8.4); may precede the client's creation.
  async add_psk(a) {
    let c = clients.get(a.client);
    if (c === undefined) {
      c = { psks: {} };
      clients.set(a.client, c);
    }
    c.psks[b64(unhex(a.psk_id))] = unhex(a.psk);
    return {};
  },

  // For the bridge's own tests: answer after `ms` milliseconds.
  async sleep(a) {
    await new Promise((resolve) => setTimeout(resolve, a.ms));
    return {};
  },

  async drop(a) {
    clients.delete(a.client);
    return {};
  },
};

async function serve(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { seq: null, ok: false, error: `bad JSON: ${e.message}` };
  }
  if (!Object.hasOwn(verbs, req.verb)) {
    return { seq: req.seq, ok: false, error: `unknown verb ${req.verb}` };
  }
  const fn = verbs[req.verb];
  try {
    return { seq: req.seq, ok: true, ...(await fn(req)) };
  } catch (e) {
    return { seq: req.seq, ok: false, error: `${e?.name ?? "Error"}: ${e?.message ?? e}` };
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (line.trim() === "") continue;
  const answer = await serve(line);
  process.stdout.write(JSON.stringify(answer) + "\n");
}
