import assert from "node:assert/strict";
import * as abuse from "../../../src/interop/codec/abuse.js";
import { CodecError } from "../../../src/interop/codec/codec-error.js";
import { decodeContent } from "../../../src/interop/codec/content.js";
import * as core from "../../../src/interop/codec/core.js";
import * as delivery from "../../../src/interop/codec/delivery.js";
import * as discovery from "../../../src/interop/codec/discovery.js";
import * as e2ee from "../../../src/interop/codec/e2ee.js";
import { decodeEnvelope } from "../../../src/interop/codec/envelope.js";
import { classifyBounce, decodeStanzaError } from "../../../src/interop/codec/errors.js";
import { decodeGroupSender } from "../../../src/interop/codec/group-sender.js";
import * as identity from "../../../src/interop/codec/identity.js";
import * as groups from "../../../src/interop/codec/groups.js";
import { decodeIq } from "../../../src/interop/codec/iq.js";
import { decodeIqRequest } from "../../../src/interop/codec/iq-requests.js";
import * as notifications from "../../../src/interop/codec/key-notifications.js";
import * as keys from "../../../src/interop/codec/keys.js";
import * as media from "../../../src/interop/codec/media.js";
import { classifyMessage } from "../../../src/interop/codec/message.js";
import {
  checkProviderMessage,
  findUnencryptedContent,
} from "../../../src/interop/codec/message-checks.js";
import { elementChildren } from "../../../src/interop/codec/read.js";
import {
  isElement,
  parseXml,
  xml,
  type XmlElement,
  type XmlNode,
} from "../../../src/interop/codec/xml.js";
import { SPEC } from "./fixtures.js";
import { prng } from "../../helpers/prng.js";

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;

const NASTY_VALUES = [
  "",
  "0",
  "1",
  "-1",
  "01",
  "128",
  "127",
  "2147483648",
  "99999999999999999999",
  "true",
  "TRUE",
  "x",
  "+491701234567",
  "491701234567@wa.example",
  "Alice@WA.example",
  "k3x9q2@g.wa.example",
  "a/b/c",
  "2025-02-30T00:00:00Z",
  "2025-03-01T12:00:00.000Z",
  "AAAA",
  "AAE",
  "…",
  "\u0000",
  "\uD800",
  "é",
  "https://user:pw@wa.example/x",
  "javascript:alert(1)",
  "__proto__",
  "constructor",
  "x".repeat(2000),
];
const NAMES = [
  "device",
  "id",
  "jid",
  "sid",
  "rid",
  "kex",
  "version",
  "seq",
  "stamp",
  "type",
  "count",
  "xmlns",
  "phone",
  "kind",
  "size",
  "url",
  "retry",
];
const ELEMENT_NAMES = [
  "key",
  "keys",
  "header",
  "encrypted",
  "device",
  "error",
  "bundle",
  "prekey",
  "item",
  "received",
  "body",
  "x",
];

function randomText(rng: Rng): string {
  const alphabet = "AZaz09+/= \n\t<>&;'\"#…é👍\u0000\uFFFF";
  let s = "";
  const n = Math.floor(rng() * 40);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rng() * alphabet.length)] ?? "";
  return rng() < 0.5 ? s : pick(rng, NASTY_VALUES);
}

function allElements(root: XmlElement): XmlElement[] {
  const out = [root];
  for (const child of elementChildren(root)) out.push(...allElements(child));
  return out;
}

function mutate(root: XmlElement, rng: Rng): void {
  const elements = allElements(root);
  const target = pick(rng, elements);
  const kids = target.children;
  switch (Math.floor(rng() * 9)) {
    case 0: // drop a child
      if (kids.length > 0) kids.splice(Math.floor(rng() * kids.length), 1);
      break;
    case 1: {
      // duplicate a child
      const c = kids.length > 0 ? pick(rng, kids) : undefined;
      if (c !== undefined) kids.push(isElement(c) ? parseXml(c.toString()) : c);
      for (const k of kids) if (isElement(k)) k.parent = target;
      break;
    }
    case 2: // swap two children
      if (kids.length > 1) {
        const i = Math.floor(rng() * kids.length);
        const j = Math.floor(rng() * kids.length);
        [kids[i], kids[j]] = [kids[j] as XmlNode, kids[i] as XmlNode];
      }
      break;
    case 3: {
      // change an attribute
      const names = Object.keys(target.attrs);
      const name = names.length > 0 && rng() < 0.7 ? pick(rng, names) : pick(rng, NAMES);
      target.attrs[name] = pick(rng, NASTY_VALUES);
      break;
    }
    case 4: {
      // delete an attribute
      const names = Object.keys(target.attrs);
      if (names.length > 0) delete target.attrs[pick(rng, names)];
      break;
    }
    case 5: // random text
      target.children = [randomText(rng), ...kids.filter(isElement)];
      break;
    case 6: // rename
      target.name = pick(rng, ELEMENT_NAMES);
      break;
    case 7: {
      // insert a foreign or known element
      const extra = xml(pick(rng, ELEMENT_NAMES), {
        id: pick(rng, NASTY_VALUES),
        xmlns: rng() < 0.5 ? undefined : "urn:x",
      });
      extra.parent = target;
      kids.splice(Math.floor(rng() * (kids.length + 1)), 0, extra);
      break;
    }
    default: // numbers where strings are expected
      target.attrs[pick(rng, NAMES)] = Math.floor(rng() * 300) - 10;
  }
}

type Decoder = (el: XmlElement) => unknown;

/** Decoders by the local name of the element they read; each mutated element meets all of its name's. */
const DECODERS: Record<string, Decoder[]> = {
  hello: [core.decodeHelloRequest, core.decodeHelloResult],
  ping: [core.decodePing],
  "hello-request": [core.decodeHelloRequestNotice],
  "request-code": [identity.decodeRequestCode],
  "code-sent": [identity.decodeCodeSent],
  "confirm-code": [identity.decodeConfirmCode],
  bound: [identity.decodeBound],
  binding: [identity.decodeBinding],
  unbind: [identity.decodeUnbind],
  unbound: [identity.decodeUnbound],
  profile: [identity.decodeProfile],
  lookup: [(e) => discovery.decodeLookupRequest(e, 5), discovery.decodeLookupResult],
  bundle: [keys.decodePublishedBundle],
  devices: [keys.decodeDevicesPublish, keys.decodeDevicesFetch, keys.decodeDeviceList],
  bundles: [keys.decodeBundlesFetch, keys.decodeBundlesResult],
  prekeys: [keys.decodePreKeysUpload, keys.decodePreKeyCountQuery, keys.decodePreKeyCounts],
  rotate: [keys.decodeRotate],
  "prekeys-low": [notifications.decodePreKeysLow],
  "devices-changed": [notifications.decodeDevicesChanged],
  request: [media.decodeSlotRequest],
  slot: [media.decodeSlot],
  blocklist: [(e) => abuse.decodeBlockList(e, "blocklist")],
  block: [(e) => abuse.decodeBlockList(e, "block")],
  unblock: [(e) => abuse.decodeBlockList(e, "unblock")],
  report: [abuse.decodeReport],
  "report-received": [abuse.decodeReportReceived],
  encrypted: [e2ee.decodeEncrypted],
  retry: [e2ee.decodeRetryRequest],
  accepted: [delivery.decodeAccepted],
  meta: [delivery.decodeMeta],
  "origin-id": [delivery.decodeOriginId],
  "stanza-id": [delivery.decodeStanzaIdElement],
  ack: [(e) => delivery.decodeAck(e, 100)],
  received: [(e) => delivery.decodeMessageRef(e, "received")],
  displayed: [(e) => delivery.decodeMessageRef(e, "displayed")],
  "request-accepted": [delivery.decodeRequestAccepted],
  sender: [decodeGroupSender],
  create: [groups.decodeCreate],
  group: [groups.decodeGroupInfo],
  event: [groups.decodeGroupEvent],
  info: [groups.decodeGroupRequest],
  add: [groups.decodeGroupRequest],
  remove: [groups.decodeGroupRequest],
  promote: [groups.decodeGroupRequest],
  demote: [groups.decodeGroupRequest],
  subject: [groups.decodeGroupRequest],
  leave: [groups.decodeGroupRequest],
  error: [(e) => classifyBounce(decodeStanzaError(e), "wa.example", "491701234567@wa.example")],
};

/** Content elements are decoded as children of a `<content>`, as in an envelope. */
const decodeAsContent: Decoder = (e) =>
  decodeContent(xml("content", { xmlns: "urn:interop:envelope:0" }, e));

let decoded = 0;

function decodeStanza(root: XmlElement): void {
  if (root.getName() === "message") {
    const m = classifyMessage(root, { maxAckItems: 100, maxReceiptItems: 50 });
    checkProviderMessage(m, "g.wa.example");
    findUnencryptedContent(root);
  } else if (root.getName() === "iq") {
    decodeIqRequest(decodeIq(root), { maxLookupBatch: 5 });
  }
  const targets =
    root.getName() === "message" || root.getName() === "iq" ? elementChildren(root) : [root];
  for (const target of targets) {
    for (const decode of DECODERS[target.getName()] ?? [decodeAsContent]) {
      attempt(() => {
        decode(target);
        decoded++;
      });
    }
  }
}

const failures: string[] = [];
let context = "";

function attempt(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CodecError) && failures.length < 10) {
      failures.push(`${context}: ${err instanceof Error ? err.stack : String(err)}`);
    }
  }
}

const STANZAS = Object.entries(SPEC).filter(([name]) => name !== "envelope");

function mutateString(s: string, rng: Rng): string {
  const i = Math.floor(rng() * (s.length + 1));
  const j = Math.min(s.length, i + Math.floor(rng() * 40));
  switch (Math.floor(rng() * 6)) {
    case 0:
      return s.slice(0, i);
    case 1:
      return s.slice(0, i) + s.slice(j);
    case 2:
      return s.slice(0, i) + s.slice(i, j) + s.slice(i);
    case 3:
      return (
        s.slice(0, i) +
        pick(rng, [
          "<!--",
          "-->",
          "&",
          "&amp",
          "&#0;",
          "&#x110000;",
          "<?",
          "<!DOCTYPE a>",
          "]]>",
          "<![CDATA[",
          "<a>",
          "</a>",
          "'",
          "xmlns:p=''",
          "p:",
          "\u0000",
          "\uFEFF",
          "<content/>",
          "<id value='x'/>",
        ]) +
        s.slice(i)
      );
    case 4:
      return s.slice(0, i) + randomText(rng) + s.slice(i);
    default:
      return s.slice(0, i) + "<a>".repeat(Math.floor(rng() * 20)) + s.slice(i);
  }
}

describe("codec fuzzing", function () {
  this.timeout(60000);

  it("10,000 seeded mutations of the spec's stanzas decode to a value or a CodecError, never another exception", () => {
    const seed = 0x5eed1;
    const rng = prng(seed);
    for (let n = 0; n < 10000; n++) {
      const [name, text] = pick(rng, STANZAS);
      const root = parseXml(text);
      const mutations = 1 + Math.floor(rng() * 3);
      for (let m = 0; m < mutations; m++) mutate(root, rng);
      context = `seed ${seed} iteration ${n} (${name})`;
      attempt(() => decodeStanza(root));
    }
    assert.deepEqual(failures, []);
    assert.ok(decoded > 1000, `only ${decoded} mutated payloads decoded`);
  });

  it("10,000 seeded mutations of the spec's group stanzas (§17) decode to a value or a CodecError", () => {
    const seed = 0x617;
    const rng = prng(seed);
    const groupStanzas = STANZAS.filter(([name]) => name.startsWith("group"));
    assert.ok(groupStanzas.length >= 8, "the spec's group examples are in the fixtures");
    const before = decoded;
    for (let n = 0; n < 10000; n++) {
      const [name, text] = pick(rng, groupStanzas);
      const root = parseXml(text);
      const mutations = 1 + Math.floor(rng() * 3);
      for (let m = 0; m < mutations; m++) mutate(root, rng);
      context = `seed ${seed} iteration ${n} (${name})`;
      attempt(() => decodeStanza(root));
    }
    assert.deepEqual(failures, []);
    assert.ok(decoded - before > 1000, `only ${decoded - before} mutated group payloads decoded`);
  });

  it("10,000 seeded string mutations of envelopes are parsed or refused with a CodecError", () => {
    const seed = 0xe4e1;
    const rng = prng(seed);
    const contents = [
      SPEC.media,
      SPEC.mediaVoice,
      SPEC.reply,
      SPEC.reactions,
      SPEC.location,
      SPEC.contact,
      SPEC.call,
      SPEC.nick,
      SPEC.fallback,
      SPEC.senderKey,
      SPEC.disappearing,
    ];
    const bases = [
      SPEC.envelope,
      ...contents.map((c) => SPEC.envelope.replace(/<body[^]*<\/body>/, c)),
    ];
    for (const base of bases) decodeEnvelope(base);
    let parsed = 0;
    for (let n = 0; n < 10000; n++) {
      let text = pick(rng, bases);
      const mutations = 1 + Math.floor(rng() * 3);
      for (let m = 0; m < mutations; m++) text = mutateString(text, rng);
      context = `seed ${seed} iteration ${n}`;
      const bytes = Buffer.from(text, "utf8");
      if (rng() < 0.2 && bytes.length > 0)
        bytes[Math.floor(rng() * bytes.length)] = Math.floor(rng() * 256);
      attempt(() => {
        decodeEnvelope(text, { maxEnvelopeBytes: 32768 });
        parsed++;
      });
      attempt(() => decodeEnvelope(bytes, { maxEnvelopeBytes: 32768 }));
    }
    assert.deepEqual(failures, []);
    // Some mutations (whitespace, text) leave a valid envelope: the fuzzer is not only testing refusals.
    assert.ok(parsed > 100, `only ${parsed} mutated envelopes parsed`);
  });
});
