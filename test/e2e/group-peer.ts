import { randomUUID } from "node:crypto";
import { SenderKeyDistributionMessage, SenderKeyMessage } from "@signalapp/libsignal-client";
import type { Knex } from "knex";
import {
  buildEncryptedMessage,
  checkEnvelopeBinding,
  classifyMessage,
  decodeEnvelope,
  decodeGroupInfo,
  encodeAck,
  encodeEnvelope,
  encodeGroupInfoQuery,
  type ContentElement,
  type Encrypted,
  type GroupInfo,
  type KeyGroup,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { xml } from "../../src/interop/codec/xml.js";
import type { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import type { DeviceAddress } from "../../src/interop/crypto/types.js";
import { describeError } from "../../src/util/errors.js";
import type { BareJid, DeviceId, MessageId, StanzaId } from "../../src/util/ids.js";
import { SIMULATOR_FEATURES, type EnlistedProvider } from "../../simulator/config.js";
import { child, childNamed, providerCrypto, TestProvider } from "../simulator/harness.js";
import { ProviderUser } from "../simulator/provider-user.js";

/** A group message this member decrypted. */
export interface PeerMessage {
  group: string;
  from: string;
  device: number;
  originId: string;
  body: string | undefined;
  content: ContentElement[];
  /** The sender key it was encrypted with (undefined for a retry re-send in the header). */
  distributionId: string | undefined;
}

/** A sender key distribution this member received in a header. */
export interface PeerSkdm {
  group: string;
  from: string;
  device: number;
  originId: string;
  distributionId: string;
}

/**
 * A user of a second provider domain in WhatsApp groups, played by the test over that provider's
 * own component connection to the simulator (as test/simulator/group-world.ts does), with real
 * Signal keys: it publishes its bundle, receives group stanzas (header key first, then
 * `groupDecrypt`, §17.4), acknowledges every delivery (§15.5), and sends group messages with a
 * sender key of its own, distributed to every member device that lacks it and rotated when a
 * device that held it is no longer a member device (§17.5). It is the third party of the e2e
 * group tests: what it reads is what a member at another provider would read.
 */
export class GroupPeer {
  readonly messages: PeerMessage[] = [];
  readonly skdms: PeerSkdm[] = [];
  readonly failures: { group: string; from: string; originId: string; error: string }[] = [];
  /** Every `<group>` ciphertext delivered to this member, by origin-id. */
  readonly ciphertexts = new Map<
    string,
    { group: string; sender: DeviceAddress; ciphertext: Uint8Array }
  >();
  /**
   * Per origin-id, over every group delivery on this connection (this member and any `extra`
   * users): stanzas delivered, 1:1 header keys in them, and `<group>` ciphertexts. The sender's
   * fan-out cost made visible: header keys are its pairwise encryptions for this provider's members.
   */
  readonly deliveries = new Map<string, { stanzas: number; headerKeys: number; groups: number }>();
  /** More users of this provider on the same connection: published, acknowledged, not decrypted. */
  readonly extras: ProviderUser[] = [];
  private readonly handled = new Set<string>();
  /** Per group: our current distribution id and the member devices that hold it. */
  private readonly held = new Map<string, { distributionId: string; devices: Set<string> }>();
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    readonly provider: TestProvider,
    readonly user: ProviderUser,
    private readonly crypto: SignalCrypto,
    private readonly knex: Knex,
  ) {
    provider.connection.onStanza((stanza) => {
      // One at a time, in arrival order: a sender's SKDM must be processed before its messages.
      this.queue = this.queue.then(() => this.handle(stanza));
    });
  }

  /** Connects as `provider` (enlisted at the simulator), says hello and publishes `localpart`. */
  static async connect(
    service: string,
    provider: EnlistedProvider,
    localpart: string,
  ): Promise<GroupPeer> {
    const tp = await TestProvider.connect(service, provider);
    await tp.hello(provider, [...SIMULATOR_FEATURES]);
    const { crypto, knex } = await providerCrypto(Date.now);
    const jid = `${localpart}=3a${provider.domain}@${provider.domain}`;
    // Enough one-time pre-keys for every co-member to start a session.
    const user = await ProviderUser.create(crypto, tp, jid, 1, 50);
    await user.publish();
    return new GroupPeer(tp, user, crypto, knex);
  }

  get jid(): BareJid {
    return this.user.jid;
  }

  /**
   * Publishes `count` more users of this provider (`<prefix><n>`), who are group members that only
   * acknowledge what they get (a benchmark's silent members); their JIDs.
   */
  async addSilentUsers(prefix: string, count: number): Promise<BareJid[]> {
    const crypto = this.crypto;
    const jids: BareJid[] = [];
    for (let i = 0; i < count; i++) {
      const jid = `${prefix}${i}=3a${this.provider.domain}@${this.provider.domain}`;
      const user = await ProviderUser.create(crypto, this.provider, jid, 1, 3);
      await user.publish();
      this.extras.push(user);
      jids.push(user.jid);
    }
    return jids;
  }

  async close(): Promise<void> {
    await this.provider.close();
    await this.queue.catch(() => undefined);
    await this.knex.destroy();
  }

  /** The group as the gatekeeper tells a member (§17.1 info). */
  async info(group: string): Promise<GroupInfo> {
    const answer = await this.provider.iq("get", encodeGroupInfoQuery(), {
      from: this.jid,
      to: group,
    });
    if (answer.attrs.type !== "result") throw new Error(`info refused: ${answer.toString()}`);
    return decodeGroupInfo(child(answer));
  }

  /** Bodies of the messages received in `group`, in arrival order. */
  bodies(group: string): string[] {
    return this.messages.filter((m) => m.group === group).map((m) => m.body ?? "");
  }

  /**
   * Sends a text to the group (§17.4): the current SKDM to every member device that lacks it, in
   * the header; a new sender key first when a device that held ours is gone (§17.5). Resolves
   * with the origin-id once the gatekeeper accepted it.
   */
  async send(group: string, text: string): Promise<string> {
    const device = this.user.device;
    const info = await this.info(group);
    const current = new Map<BareJid, DeviceId[]>();
    for (const p of info.participants) {
      if (p.jid === this.jid) continue;
      const devices = await this.user.fetchDevices(p.jid);
      await this.user.prepare(p.jid, devices);
      current.set(p.jid, devices);
    }
    const now = new Set([...current].flatMap(([jid, ds]) => ds.map((d) => `${jid}/${d}`)));
    let held = this.held.get(group);
    let distribution;
    if (held !== undefined && [...held.devices].some((d) => !now.has(d))) {
      distribution = await device.groups.rotate(group);
      held = undefined;
    } else {
      distribution = await device.groups.distribution(group);
    }
    if (held === undefined || held.distributionId !== distribution.distributionId) {
      held = { distributionId: distribution.distributionId, devices: new Set() };
    }
    const originId = randomUUID() as MessageId;
    const time = new Date();
    const keyGroups: KeyGroup[] = [];
    for (const [jid, devices] of current) {
      const lacking = devices.filter((d) => !held.devices.has(`${jid}/${d}`));
      if (lacking.length === 0) continue;
      const skdmEnvelope = encodeEnvelope({
        content: [{ kind: "sender-key", group: group as BareJid, skdm: distribution.skdm }],
        id: originId,
        time,
        to: group as BareJid,
        from: this.jid,
      });
      const keys = await device.sessions.encryptForDevices(
        Buffer.from(skdmEnvelope, "utf8"),
        lacking.map((d) => ({ jid, device: d })),
      );
      keyGroups.push({
        jid,
        keys: keys.map((k) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext })),
      });
    }
    const envelope = encodeEnvelope({
      content: [{ kind: "body", text }],
      id: originId,
      time,
      to: group as BareJid,
      from: this.jid,
    });
    const ciphertext = await device.groups.encrypt(group, Buffer.from(envelope, "utf8"));
    const stanza = buildEncryptedMessage({
      type: "groupchat",
      originId,
      from: this.user.full,
      to: group,
      encrypted: { sid: device.deviceId, keyGroups, group: ciphertext, retry: undefined },
    });
    const outcome = await this.provider.outcome(stanza, 20_000);
    if (childNamed(outcome, "accepted") === undefined) {
      throw new Error(`the group message was not accepted: ${outcome.toString().slice(0, 500)}`);
    }
    for (const g of keyGroups) for (const k of g.keys) held.devices.add(`${g.jid}/${k.rid}`);
    this.held.set(group, held);
    return originId;
  }

  private async handle(stanza: XmlElement): Promise<void> {
    if (stanza.name !== "message") return;
    let message;
    try {
      message = classifyMessage(stanza);
    } catch {
      return;
    }
    const sid = message.stanzaId;
    if (sid !== undefined && this.handled.has(sid.id)) return this.ack(sid.id, sid.by);
    const { payload, sender, originId } = message;
    const group = message.from === undefined ? undefined : String(stanza.attrs.from);
    if (payload.kind === "encrypted" && originId !== undefined && sender !== undefined) {
      const d = this.deliveries.get(originId) ?? { stanzas: 0, headerKeys: 0, groups: 0 };
      d.stanzas += 1;
      d.headerKeys += payload.encrypted.keyGroups.reduce((n, g) => n + g.keys.length, 0);
      if (payload.encrypted.group !== undefined) d.groups += 1;
      this.deliveries.set(originId, d);
    }
    const toMe = String(stanza.attrs.to).split("/")[0] === this.jid;
    if (
      toMe &&
      payload.kind === "encrypted" &&
      sender?.device !== undefined &&
      originId !== undefined &&
      group !== undefined
    ) {
      const from = { jid: sender.jid, device: sender.device };
      await this.receive(group, from, originId, payload.encrypted).catch((err: unknown) => {
        this.failures.push({ group, from: sender.jid, originId, error: describeError(err) });
      });
    }
    if (sid !== undefined) {
      this.handled.add(sid.id);
      await this.ack(sid.id, sid.by);
    }
  }

  private async ack(id: StanzaId, by: string): Promise<void> {
    await this.provider
      .send(
        xml(
          "message",
          { id: `ack-${randomUUID()}`, from: this.provider.domain, to: by },
          encodeAck([id]),
        ),
      )
      .catch(() => undefined);
  }

  /** §17.4 receiving: own header key first (SKDM), then `groupDecrypt`. */
  private async receive(
    group: string,
    sender: DeviceAddress,
    originId: string,
    e: Encrypted,
  ): Promise<void> {
    const device = this.user.device;
    const key = e.keyGroups
      .find((g) => g.jid === this.jid)
      ?.keys.find((k) => k.rid === device.deviceId);
    if (key !== undefined) {
      const plaintext = await device.sessions.decrypt(
        {
          senderJid: sender.jid,
          senderDevice: sender.device,
          kex: key.kex,
          ciphertext: key.ciphertext,
        },
        async (p) => p,
      );
      const env = decodeEnvelope(plaintext);
      checkEnvelopeBinding(env, {
        from: sender.jid,
        to: group as BareJid,
        originId: originId as MessageId,
      });
      for (const c of env.content) {
        if (c.kind !== "sender-key" || c.group !== group) continue;
        await device.groups.processDistribution(group, sender, c.skdm);
        this.skdms.push({
          group,
          from: sender.jid,
          device: sender.device,
          originId,
          distributionId: SenderKeyDistributionMessage.deserialize(
            new Uint8Array(c.skdm),
          ).distributionId(),
        });
      }
      const shown = env.content.filter((c) => c.kind !== "sender-key");
      if (shown.length > 0) {
        this.record(group, sender, originId, shown, undefined);
        return;
      }
    }
    if (e.group === undefined) return;
    this.ciphertexts.set(originId, { group, sender, ciphertext: e.group });
    const distributionId = SenderKeyMessage.deserialize(new Uint8Array(e.group)).distributionId();
    const plaintext = await device.groups.decrypt(group, sender, e.group, async (p) => p);
    const env = decodeEnvelope(plaintext);
    checkEnvelopeBinding(env, {
      from: sender.jid,
      to: group as BareJid,
      originId: originId as MessageId,
    });
    this.record(group, sender, originId, env.content, distributionId);
  }

  private record(
    group: string,
    sender: DeviceAddress,
    originId: string,
    content: ContentElement[],
    distributionId: string | undefined,
  ): void {
    const body = content.find((c) => c.kind === "body");
    this.messages.push({
      group,
      from: sender.jid,
      device: sender.device,
      originId,
      body: body?.kind === "body" ? body.text : undefined,
      content,
      distributionId,
    });
  }
}
