import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { pino } from "pino";
import {
  buildEncryptedMessage,
  encodeCreate,
  encodeGroupChange,
  encodeGroupInfoQuery,
  encodeLeave,
  encodeSubjectChange,
  type Encrypted,
  buildChatState,
  buildDisplayed,
  buildReceipt,
  buildRetryRequest,
  encodeAck,
  encodeBlockList,
  encodeBundlesFetch,
  encodeConfirmCode,
  encodeDevicesFetch,
  encodeDevicesPublish,
  encodeHelloRequest,
  encodeLookupRequest,
  encodePing,
  encodePreKeysUpload,
  encodeProfile,
  encodePublishedBundle,
  encodeReport,
  encodeRequestCode,
  encodeSlotRequest,
} from "../../src/interop/codec/index.js";
import { xml, type XmlElement } from "../../src/interop/codec/xml.js";
import type { BareJid, DeviceId, MessageId, PhoneNumber, StanzaId } from "../../src/util/ids.js";
import { toOneTime, toPublished } from "../../simulator/users/convert.js";
import { SIMULATOR_FEATURES } from "../../simulator/config.js";
import { ALICE, errorOf, PROVIDER } from "./harness.js";
import { text } from "./provider-user.js";
import { GK, makeWorld, PHONE, type World } from "./world.js";
import { prng } from "../helpers/prng.js";

const JUNK = [
  "",
  "0",
  "-1",
  "127",
  "128",
  "99999999999999999999",
  "true",
  "yes",
  "+491701234567",
  "491701234567@wa.example",
  "ALICE@matrix.bridge.example",
  "a".repeat(300),
  "=3a=zz",
  "AAAA",
  "!!!=",
  "2025-13-40T25:61:00Z",
  "2025-03-01T12:00:00.000Z",
  "urn:interop:content:0",
  "émoji 👍",
  "x'y\"z<&>",
];

class Mutator {
  constructor(private readonly rand: () => number) {}

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rand() * items.length)] as T;
  }

  /** A deep copy of `el` with one to three random mutations somewhere in its tree. */
  mutate(el: XmlElement): XmlElement {
    const copy = clone(el);
    const times = 1 + Math.floor(this.rand() * 3);
    for (let i = 0; i < times; i++) this.mutateOne(copy);
    return copy;
  }

  private mutateOne(root: XmlElement): void {
    const nodes = all(root);
    const target = this.pick(nodes);
    const attrNames = Object.keys(target.attrs).filter((k) => !(target === root && k === "from"));
    switch (Math.floor(this.rand() * 9)) {
      case 0:
        if (attrNames.length > 0) delete target.attrs[this.pick(attrNames)];
        break;
      case 1:
        if (attrNames.length > 0) target.attrs[this.pick(attrNames)] = this.pick(JUNK);
        break;
      case 2: {
        const kids = elements(target);
        if (kids.length > 0) target.children.splice(target.children.indexOf(this.pick(kids)), 1);
        break;
      }
      case 3: {
        const kids = elements(target);
        if (kids.length > 0) target.children.push(clone(this.pick(kids)));
        break;
      }
      case 4:
        target.children.push(
          xml(this.pick(["body", "x", "stanza-id", "meta", "group"]), {
            xmlns: this.pick([
              "urn:interop:content:0",
              "urn:example:unknown",
              "urn:xmpp:sid:0",
              "urn:interop:delivery:0",
            ]),
          }),
        );
        break;
      case 5:
        target.children = target.children.filter((c) => typeof c !== "string");
        target.children.push(this.pick(JUNK));
        break;
      case 6:
        if (target !== root)
          target.attrs.xmlns = this.pick(["urn:interop:keys:0", "urn:example:x", ""]);
        break;
      case 7:
        root.attrs.from = this.pick([
          `${ALICE}/1`,
          `${ALICE}/2`,
          `${ALICE}/x`,
          ALICE,
          PROVIDER.domain,
          `=@${PROVIDER.domain}`,
        ]);
        break;
      default:
        root.attrs[this.pick(["type", "id", "to"])] = this.pick([
          ...JUNK,
          "chat",
          "groupchat",
          "get",
          "set",
          "wa.example",
          "g.wa.example",
          GK,
        ]);
    }
  }
}

function elements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== "string");
}

function all(el: XmlElement): XmlElement[] {
  return [el, ...elements(el).flatMap(all)];
}

function clone(el: XmlElement): XmlElement {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(el.attrs)) if (typeof v === "string") attrs[k] = v;
  return xml(el.name, attrs, ...el.children.map((c) => (typeof c === "string" ? c : clone(c))));
}

describe("simulator: fuzzing with mutated provider stanzas", function () {
  this.timeout(180_000);
  let w: World;
  const failures: string[] = [];
  const onRejection = (reason: unknown): void => {
    failures.push(`unhandled rejection: ${String(reason)}`);
  };

  before(async function () {
    const errors = new Writable({
      write(chunk: Buffer, _enc, done) {
        const line = JSON.parse(chunk.toString()) as { level: number; msg: string; err?: string };
        if (line.level >= 50) failures.push(`${line.msg}: ${line.err ?? ""}`);
        done();
      },
    });
    process.on("unhandledRejection", onRejection);
    w = await makeWorld({ logger: pino({ level: "error" }, errors) });
  });
  after(async function () {
    process.off("unhandledRejection", onRejection);
    await w.close();
  });

  it("survives 10,000 malformed stanzas and still answers a ping", async function () {
    const rand = prng(20260301);
    const m = new Mutator(rand);
    const a = w.alice;
    const { stanza: encrypted } = await a.message(GK, text("seed"));
    const published = toPublished(a.bundle);
    const iq = (type: string, payload: XmlElement, from = ALICE, to = "wa.example"): XmlElement =>
      xml("iq", { type, id: "fz", from, to }, payload);
    const ref = { id: "m1" as MessageId, author: GK };
    const seeds: XmlElement[] = [
      encrypted,
      iq(
        "get",
        encodeHelloRequest({ version: "0.2", provider: PROVIDER.id, features: [] }),
        PROVIDER.domain,
      ),
      iq("get", encodePing(), PROVIDER.domain),
      iq(
        "set",
        encodeRequestCode({ phone: "+491709876543" as PhoneNumber, channel: "sms", lang: "de" }),
      ),
      iq("set", encodeConfirmCode({ phone: "+491709876543" as PhoneNumber, code: "123456" })),
      iq("set", encodeProfile({ handle: "alice" })),
      iq("get", encodeLookupRequest({ phones: ["+491701234567", "+491705550000"] })),
      iq("set", encodePublishedBundle(published)),
      iq("set", encodeDevicesPublish([1 as DeviceId])),
      iq("get", encodeDevicesFetch(GK)),
      iq("get", encodeBundlesFetch(GK)),
      iq(
        "set",
        encodePreKeysUpload(
          1 as DeviceId,
          toOneTime({ preKeys: a.bundle.preKeys.slice(0, 2), kyberPreKeys: [] }),
        ),
      ),
      iq("get", encodeSlotRequest({ kind: "image", size: 1000 })),
      iq("set", encodeBlockList("block", [GK])),
      iq("set", encodeBlockList("unblock", [])),
      iq("set", encodeReport({ jid: GK, reason: "spam", block: false, text: "x", messages: [] })),
      buildReceipt({
        type: "chat",
        originId: "rc" as MessageId,
        from: a.full,
        to: GK,
        receipts: [ref],
      }),
      buildDisplayed({
        type: "chat",
        originId: "dm" as MessageId,
        from: a.full,
        to: GK,
        marker: ref,
      }),
      buildChatState({ type: "chat", from: a.full, to: GK, state: "composing" }),
      buildRetryRequest({
        type: "chat",
        originId: "rq" as MessageId,
        from: a.full,
        to: `${GK}/1`,
        retry: {
          id: "m1" as MessageId,
          count: 1,
          registration: 1,
          reason: "no-key",
          author: undefined,
        },
      }),
      xml(
        "message",
        { id: "ack", from: PROVIDER.domain, to: "wa.example" },
        encodeAck(["01HQ7Y4C2PA8R5E3J0N9WX6KBT" as StanzaId]),
      ),
    ];
    const started = Date.now();
    let sent = 0;
    for (let i = 0; i < 10_000; i++) {
      const stanza = m.mutate(m.pick(seeds));
      stanza.attrs.id =
        typeof stanza.attrs.id === "string" ? `${stanza.attrs.id}-${i}` : stanza.attrs.id;
      await w.provider.send(stanza);
      sent++;
      // Let the simulator keep up, as a real peer's TCP window would.
      if (i % 250 === 249) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(sent, 10_000);
    const ping = await w.provider.iq("get", encodePing(), {
      from: PROVIDER.domain,
      id: "final-ping",
      timeoutMs: 150_000,
    });
    assert.ok(w.provider.connection.isOnline, "the stream stayed open");
    assert.ok(ping.attrs.type === "result" || ping.attrs.type === "error");
    const hello = await w.provider.hello();
    assert.equal(hello.attrs.type, "result");
    assert.deepEqual(failures, []);
    process.stderr.write(
      `fuzz: ${Date.now() - started} ms, ${w.provider.received.length} answers\n`,
    );
  });

  it("survives 10,000 malformed group stanzas (§17) and the group still works", async function () {
    // The test before ends with a hello without features: negotiate groups again.
    await w.provider.hello(PROVIDER, [...SIMULATOR_FEATURES]);
    const rand = prng(20261206);
    const m = new Mutator(rand);
    const a = w.alice;
    const g = await w.sim.users.createGroup(PHONE, "fuzz", [ALICE as BareJid]);
    const iq = (type: string, payload: XmlElement, to: string = g.jid): XmlElement =>
      xml("iq", { type, id: "gz", from: ALICE, to }, payload);
    const enc = (e: Partial<Encrypted>, originId = "gm") =>
      buildEncryptedMessage({
        type: "groupchat",
        originId: originId as MessageId,
        from: a.full,
        to: g.jid,
        encrypted: { sid: 1 as DeviceId, keyGroups: [], group: undefined, retry: undefined, ...e },
      });
    const key = { rid: 1 as DeviceId, kex: true, ciphertext: new Uint8Array([1, 2, 3]) };
    const ref = { id: "gm" as MessageId, author: GK };
    const seeds: XmlElement[] = [
      iq("set", encodeCreate({ subject: "s", participants: [GK] }), "g.wa.example"),
      iq("get", encodeGroupInfoQuery()),
      iq("set", encodeGroupChange("add", [GK])),
      iq("set", encodeGroupChange("remove", [GK])),
      iq("set", encodeGroupChange("promote", [GK])),
      iq("set", encodeGroupChange("demote", [ALICE as BareJid])),
      iq("set", encodeSubjectChange("subject")),
      iq("set", encodeLeave()),
      enc({ keyGroups: [{ jid: GK, keys: [key] }], group: new Uint8Array([9, 9]) }),
      enc({ keyGroups: [{ jid: GK, keys: [key] }] }, "gd"),
      enc({ keyGroups: [{ jid: GK, keys: [key] }], retry: 1 }),
      buildRetryRequest({
        type: "groupchat",
        originId: "gr" as MessageId,
        from: a.full,
        to: g.jid,
        retry: {
          id: "gm" as MessageId,
          count: 1,
          registration: 1,
          reason: "no-sender-key",
          author: { jid: GK, device: 1 as DeviceId },
        },
      }),
      buildReceipt({
        type: "groupchat",
        originId: "gc" as MessageId,
        from: a.full,
        to: g.jid,
        receipts: [ref],
      }),
      buildDisplayed({
        type: "groupchat",
        originId: "gdm" as MessageId,
        from: a.full,
        to: g.jid,
        marker: ref,
      }),
      buildChatState({ type: "groupchat", from: a.full, to: g.jid, state: "composing" }),
      xml(
        "message",
        { id: "gack", from: PROVIDER.domain, to: "g.wa.example" },
        encodeAck(["01HQ7Y4C2PA8R5E3J0N9WX6KBT" as StanzaId]),
      ),
    ];
    for (let i = 0; i < 10_000; i++) {
      const stanza = m.mutate(m.pick(seeds));
      stanza.attrs.id =
        typeof stanza.attrs.id === "string" ? `${stanza.attrs.id}-${i}` : stanza.attrs.id;
      const origin = stanza.children.find(
        (c): c is XmlElement => typeof c !== "string" && c.name === "origin-id",
      );
      // Distinct origin-ids, so that mutations reach the checks behind de-duplication.
      if (origin !== undefined && typeof origin.attrs.id === "string") origin.attrs.id += `-${i}`;
      await w.provider.send(stanza);
      if (i % 250 === 249) await new Promise((r) => setTimeout(r, 20));
    }
    const ping = await w.provider.iq("get", encodePing(), {
      from: PROVIDER.domain,
      id: "final-group-ping",
      timeoutMs: 150_000,
    });
    assert.ok(ping.attrs.type === "result" || ping.attrs.type === "error");
    assert.ok(w.provider.connection.isOnline, "the stream stayed open");
    assert.deepEqual(failures, []);
    // The group still answers its members (or says Alice left, if a mutated leave got through).
    const info = await w.provider.iq("get", encodeGroupInfoQuery(), { from: ALICE, to: g.jid });
    assert.ok(
      info.attrs.type === "result" || errorOf(info).app?.name === "not-member",
      info.toString(),
    );
    const sent = await w.sim.users.sendToGroup(PHONE, g.jid, text("still here"));
    assert.ok(sent.seq !== undefined);
  });
});
