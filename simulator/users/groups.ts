import { randomUUID } from "node:crypto";
import {
  decodeEnvelope,
  encodeEnvelope,
  type ContentElement,
  type GroupInfo,
  type GroupRequest,
  type KeyGroup,
} from "../../src/interop/codec/index.js";
import type { DeviceCrypto, SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import type { DeviceAddress } from "../../src/interop/crypto/types.js";
import { BridgeError } from "../../src/util/errors.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import { refuse } from "../errors.js";
import type { LocalDelivery } from "../delivery/local.js";
import type { Gatekeeper } from "../gatekeeper.js";
import type { GroupAccepted } from "../groups/messages.js";
import { toRemote } from "./convert.js";
import type { UserDevices } from "./devices.js";

type RetryDelivery = Extract<LocalDelivery, { kind: "retry" }>;

interface SentRow {
  group_jid: string;
  envelope: string;
  members: string;
  answered: string;
  at: number;
}

/**
 * Simulated WhatsApp users in groups (§17): management through the gatekeeper's own group
 * service, and sending with sender keys (§17.4, §17.5). Each device keeps one sender key per
 * group; before a message it distributes the current SKDM in the header to every member device
 * that lacks it (not to its own user's other devices), and it rotates first when a device that
 * held the key is no longer a member device or its user's identity changed. Envelopes are kept
 * to answer group retries (§17.6 with E29). Every call runs in the gatekeeper's order.
 */
export class UserGroups {
  constructor(
    private readonly gatekeeper: Gatekeeper,
    private readonly crypto: SignalCrypto,
    private readonly devices: UserDevices,
  ) {}

  create(jid: BareJid, subject: string | undefined, participants: BareJid[]): Promise<GroupInfo> {
    return this.gatekeeper.groups.create({ jid, provider: undefined }, subject, participants);
  }

  modify(jid: BareJid, group: BareJid, request: GroupRequest): Promise<GroupInfo> {
    return this.gatekeeper.groups.modify({ jid, provider: undefined }, group, request);
  }

  async send(
    jid: BareJid,
    group: BareJid,
    content: ContentElement[],
    options: { device?: DeviceId; originId?: MessageId } = {},
  ): Promise<{ originId: MessageId; seq: number | undefined }> {
    const store = this.gatekeeper.groupStore;
    const members = await store.members(group);
    if (!members.some((m) => m.jid === jid)) {
      throw refuse({ name: "not-member" }, `${jid} is not a member of ${group}`);
    }
    const device = await this.sendingDevice(jid, options.device);
    const limits = this.gatekeeper.ctx.limits;
    const originId = options.originId ?? (randomUUID() as MessageId);
    const now = new Date(this.gatekeeper.now());
    const current = new Map<string, { devices: DeviceId[]; identity: string }>();
    for (const m of members) {
      if (m.jid === jid) continue;
      current.set(m.jid, {
        devices: await this.gatekeeper.services.keys.devicesOf(m.jid),
        identity: await this.identityHex(m.jid),
      });
    }
    const distribution = await this.currentKey(device, group, current);
    const lacking = await this.lacking(device, group, distribution.distributionId, current);
    const keyGroups: KeyGroup[] = [];
    for (const [target, ids] of lacking) {
      const skdmEnvelope = encodeEnvelope(
        {
          content: [{ kind: "sender-key", group, skdm: distribution.skdm }],
          id: originId,
          time: now,
          to: group,
          from: jid,
        },
        { maxEnvelopeBytes: limits["max-envelope-bytes"] },
      );
      const recipients = ids.map((d) => ({ jid: target as BareJid, device: d }));
      await this.ensureSessions(device, target as BareJid, recipients);
      const keys = await device.sessions.encryptForDevices(
        Buffer.from(skdmEnvelope, "utf8"),
        recipients,
      );
      keyGroups.push({
        jid: target as BareJid,
        keys: keys.map((k) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext })),
      });
    }
    const envelope = encodeEnvelope(
      { content, id: originId, time: now, to: group, from: jid },
      { maxEnvelopeBytes: limits["max-envelope-bytes"] },
    );
    const ciphertext = await device.groups.encrypt(group, Buffer.from(envelope, "utf8"));
    const { knex } = this.gatekeeper.ctx;
    await knex.transaction(async (trx) => {
      for (const [target, ids] of lacking) {
        for (const d of ids) {
          await trx("gk_user_sender_keys")
            .insert({
              owner: jid,
              owner_device: device.deviceId,
              group_jid: group,
              distribution_id: distribution.distributionId,
              target,
              target_device: d,
              identity: current.get(target)?.identity ?? "",
            })
            .onConflict(["owner", "owner_device", "group_jid", "target", "target_device"])
            .merge();
        }
      }
      await trx("gk_user_group_sent").insert({
        owner: jid,
        owner_device: device.deviceId,
        origin_id: originId,
        group_jid: group,
        envelope,
        members: JSON.stringify(Object.fromEntries([...current].map(([k, v]) => [k, v.devices]))),
        answered: "[]",
        at: this.gatekeeper.now(),
      });
    });
    const accepted = await this.gatekeeper.groupMessages.handle(
      { group, sender: jid, device: device.deviceId, originId, replyTo: undefined, verified: true },
      {
        kind: "encrypted",
        encrypted: { sid: device.deviceId, keyGroups, group: ciphertext, retry: undefined },
      },
    );
    return { originId, seq: accepted?.record.seq };
  }

  /**
   * Answers a group retry request under §12.5 and §17.6: a stored envelope within the window, a
   * count not answered yet, a requester who was a member when it was sent (E29: any device of
   * that user, as the gatekeeper checked its current list). The answer is the original envelope
   * with the current SKDM appended if the requester is still a member.
   */
  async answerRetry(d: RetryDelivery): Promise<boolean> {
    const group = d.group;
    if (group === undefined || d.toDevice === undefined) return false;
    const { knex, limits } = this.gatekeeper.ctx;
    const where = { owner: d.to, owner_device: d.toDevice, origin_id: d.retry.id };
    const row = (await knex("gk_user_group_sent").where(where).first()) as SentRow | undefined;
    if (row === undefined || row.group_jid !== group) return false;
    if (this.gatekeeper.now() - Number(row.at) >= limits["retry-window-seconds"] * 1000) {
      return false;
    }
    const answered = JSON.parse(row.answered) as string[];
    const slot = `${d.from}/${d.fromDevice}/${d.retry.count}`;
    if (answered.includes(slot)) return false;
    const members = JSON.parse(row.members) as Record<string, number[]>;
    if (members[d.from] === undefined) return false;
    const device = await this.crypto.device(d.to, d.toDevice);
    const requester: DeviceAddress = { jid: d.from, device: d.fromDevice };
    await device.retries.prepareAnswer(requester);
    const [bundle] = await this.gatekeeper.services.keys.fetchBundles(d.from, [d.fromDevice]);
    if (bundle === undefined) return false;
    await device.sessions.processBundle(d.from, toRemote(bundle));
    const original = decodeEnvelope(row.envelope, {
      maxEnvelopeBytes: limits["max-envelope-bytes"],
    });
    const stillMember = (await this.gatekeeper.groupStore.member(group, d.from)) !== undefined;
    if (stillMember) {
      const { skdm } = await device.groups.distribution(group);
      original.content.push({ kind: "sender-key", group, skdm });
    }
    const envelope = encodeEnvelope(original, {
      maxEnvelopeBytes: limits["max-envelope-bytes"],
    });
    const [key] = await device.sessions.encryptForDevices(Buffer.from(envelope, "utf8"), [
      requester,
    ]);
    if (key === undefined) return false;
    await knex("gk_user_group_sent")
      .where(where)
      .update({ answered: JSON.stringify([...answered, slot]) });
    await this.gatekeeper.groupMessages.handle(
      {
        group,
        sender: d.to,
        device: d.toDevice,
        originId: d.retry.id,
        replyTo: undefined,
        verified: true,
      },
      {
        kind: "encrypted",
        encrypted: {
          sid: d.toDevice,
          keyGroups: [
            { jid: d.from, keys: [{ rid: key.rid, kex: true, ciphertext: key.ciphertext }] },
          ],
          group: undefined,
          retry: d.retry.count,
        },
      },
    );
    return true;
  }

  /** A receipt, marker or retry request from a member device to the group (§15.7, §17.6). */
  transport(
    jid: BareJid,
    device: DeviceId,
    group: BareJid,
    payload: Parameters<Gatekeeper["groupMessages"]["handle"]>[1],
  ): Promise<GroupAccepted | undefined> {
    return this.gatekeeper.groupMessages.handle(
      {
        group,
        sender: jid,
        device,
        originId: (payload.kind === "chat-state" ? undefined : randomUUID()) as MessageId,
        replyTo: undefined,
        verified: true,
      },
      payload,
    );
  }

  /**
   * The device's sender key for the group, rotated first (§17.5) when a device that holds it is
   * no longer a member device or its user's identity changed.
   */
  private async currentKey(
    device: DeviceCrypto,
    group: BareJid,
    current: Map<string, { devices: DeviceId[]; identity: string }>,
  ) {
    const held = await this.held(device, group);
    const stale = held.some((h) => {
      const now = current.get(h.target);
      return (
        now === undefined ||
        !now.devices.includes(h.target_device as DeviceId) ||
        now.identity !== h.identity
      );
    });
    if (!stale) return device.groups.distribution(group);
    await this.gatekeeper.ctx
      .knex("gk_user_sender_keys")
      .where({ owner: device.jid, owner_device: device.deviceId, group_jid: group })
      .delete();
    return device.groups.rotate(group);
  }

  /** Member devices that have not received the current SKDM, per user. */
  private async lacking(
    device: DeviceCrypto,
    group: BareJid,
    distributionId: string,
    current: Map<string, { devices: DeviceId[]; identity: string }>,
  ): Promise<Map<string, DeviceId[]>> {
    const held = (await this.held(device, group)).filter(
      (h) => h.distribution_id === distributionId,
    );
    const has = new Set(held.map((h) => `${h.target}/${h.target_device}`));
    const result = new Map<string, DeviceId[]>();
    for (const [jid, { devices }] of current) {
      const missing = devices.filter((d) => !has.has(`${jid}/${d}`));
      if (missing.length > 0) result.set(jid, missing);
    }
    return result;
  }

  private async held(device: DeviceCrypto, group: BareJid) {
    return (await this.gatekeeper.ctx
      .knex("gk_user_sender_keys")
      .where({ owner: device.jid, owner_device: device.deviceId, group_jid: group })) as {
      target: string;
      target_device: number;
      distribution_id: string;
      identity: string;
    }[];
  }

  private async ensureSessions(
    device: DeviceCrypto,
    target: BareJid,
    recipients: DeviceAddress[],
  ): Promise<void> {
    const missing = await device.sessions.devicesWithoutSession(recipients);
    if (missing.length === 0) return;
    const keys = this.gatekeeper.services.keys;
    const list = await keys.deviceList(target);
    if (list !== undefined) await this.crypto.storeDeviceList(target, list.version, list.devices);
    const bundles = await keys.fetchBundles(
      target,
      missing.map((m) => m.device),
    );
    for (const b of bundles) await device.sessions.processBundle(target, toRemote(b));
  }

  private async identityHex(jid: BareJid): Promise<string> {
    const row = (await this.gatekeeper.ctx.knex("gk_key_users").where({ jid }).first()) as
      { identity: Buffer | Uint8Array } | undefined;
    return row === undefined ? "" : Buffer.from(row.identity).toString("hex");
  }

  private async sendingDevice(jid: BareJid, device?: DeviceId): Promise<DeviceCrypto> {
    const devices = await this.devices.active(jid);
    const id = device ?? devices[0];
    if (id === undefined || !devices.includes(id)) {
      throw new BridgeError("no-such-device", `${jid} has no device ${String(device ?? "")}`);
    }
    return this.crypto.device(jid, id);
  }
}
