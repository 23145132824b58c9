import { SqlRunner, type Tx } from "../../db/sql.js";
import { hash, randomUUID } from "node:crypto";
import type { Knex } from "knex";
import { describeError } from "../../util/errors.js";
import { messageId, type BareJid, type MessageId } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { CodecError } from "../codec/codec-error.js";
import type { ContentElement } from "../codec/content.js";
import type { ChatState, MessageRef } from "../codec/delivery.js";
import { decodeEncrypted, type EncryptedKey as WireKey } from "../codec/e2ee.js";
import { encodeEnvelope, randomRpad } from "../codec/envelope.js";
import { bareOf, deviceJid } from "../codec/jid.js";
import {
  buildChatState,
  buildDisplayed,
  buildEncryptedMessage,
  buildReceipt,
} from "../codec/message-builders.js";
import { FEATURE, NS } from "../codec/namespaces.js";
import { optionalChild } from "../codec/read.js";
import { parseXml } from "../codec/xml.js";
import { NoSessionError } from "../crypto/errors.js";
import type { KeyVault } from "../../vault/key-vault.js";
import type { DeviceCrypto, SignalCrypto } from "../crypto/signal-crypto.js";
import type { DeviceAddress, EncryptedKey } from "../crypto/types.js";
import type { KeyDirectory } from "./directory.js";
import { ProviderError } from "./errors.js";
import { exactStanza, type Outbox, type StaleDeviceList } from "./outbox.js";
import * as tables from "../store/index.js";
import type { NewOutboxRow, OutboxRow } from "../store/outbox.js";
import type { HelloSession } from "./session.js";
import type { GroupStore, StoredGroup } from "./groups.js";
import { rememberEnvelope } from "../crypto/session-cipher.js";

interface SenderOptions {
  readonly knex: Knex;
  readonly crypto: SignalCrypto;
  readonly vault: KeyVault;
  readonly directory: KeyDirectory;
  readonly outbox: Outbox;
  readonly session: HelloSession;
  readonly now: () => number;
  readonly logger: Logger;
  /** Groups of local users (§17); without them group sends are refused. */
  readonly groups?: GroupStore;
  /** Fetches `info` of a group the store does not know yet (it stores the result). */
  readonly fetchGroup?: (local: BareJid, group: BareJid) => Promise<void>;
}

/** §15.8: `composing` at most once per 10 s per conversation. */
const COMPOSING_INTERVAL_MS = 10_000;

/** Content kinds and the feature each needs in 1:1 (§7.6; `disappearing` is exempt). */
const CONTENT_FEATURE: Partial<Record<ContentElement["kind"], string>> = {
  reply: FEATURE.reply,
  reactions: FEATURE.reactions,
  replace: FEATURE.edit,
  retract: FEATURE.retract,
  location: FEATURE.location,
  contact: FEATURE.contact,
  nick: FEATURE.nick,
  call: FEATURE.call,
  "sender-key": FEATURE.groups,
};

/**
 * The row reference of `outbox.envelope_enc`, which rows queued before issue #15 hold: a second
 * sealed copy of the envelope in `signal_sent_envelopes` (one seal per message less since).
 */
const envelopeRef = (sender: string, originId: string): readonly [string, string, string] => [
  "outbox",
  sender,
  originId,
];

/**
 * The sending side of 1:1 traffic (§12.3, §15.7, §15.8): encrypts an envelope per
 * recipient device and stores the exact stanza in the outbox in the transaction that advances the
 * sessions, re-encrypts for added devices only after `stale-device-list`, and builds receipts,
 * markers and typing.
 */
export class Sender {
  private readonly log: Logger;
  private readonly composingSentAt = new Map<string, number>();

  constructor(private readonly options: SenderOptions) {
    this.log = options.logger.child({ component: "sender" });
  }

  /** The local user's device (the bridge runs one per user); `no-local-device` without keys. */
  async localDevice(local: BareJid): Promise<DeviceCrypto> {
    const [first] = await this.options.crypto.localDevices(local);
    if (first === undefined) {
      throw new ProviderError("no-local-device", `${local} has no Signal device`);
    }
    return this.options.crypto.device(local, first);
  }

  /**
   * Encrypts `content` for every device of `to` and queues it (§12.3). Resolves with the
   * origin-id once the stanza is durably in the outbox; acceptance or failure come as events.
   * With `eventId` (the Matrix event it bridges) the origin-id is derived from it, and a second
   * call for the same event finds the first one's row and queues nothing: a Matrix transaction
   * retried after a crash between the outbox commit and the core's mapping is not sent twice.
   */
  async sendMessage(message: {
    from: BareJid;
    to: BareJid;
    content: ContentElement[];
    eventId?: string;
  }): Promise<MessageId> {
    const { session, directory, now } = this.options;
    this.checkFeatures(message.content);
    const device = await this.localDevice(message.from);
    const originId =
      message.eventId === undefined
        ? messageId(randomUUID())
        : originIdForEvent(message.from, message.eventId);
    // On SQLite the outbox insert itself finds a row queued before (encryptIntoOutbox); the
    // check before the encryption is one statement per message more (#15).
    if (message.eventId !== undefined && SqlRunner.of(this.options.knex).dialect !== "sqlite") {
      const senderJid = deviceJid(device.jid, device.deviceId);
      const queued = await SqlRunner.of(this.options.knex).connection((tx) =>
        tables.outbox.exists(tx, senderJid, originId),
      );
      if (queued) {
        await this.sendQueuedAgain(senderJid, originId);
        return originId;
      }
    }
    let envelope: string;
    try {
      envelope = encodeEnvelope(
        {
          content: message.content,
          id: originId,
          time: new Date(now()),
          to: message.to,
          from: message.from,
        },
        { maxEnvelopeBytes: session.limits["max-envelope-bytes"] },
      );
    } catch (err) {
      if (err instanceof CodecError)
        throw new ProviderError("too-large", err.message, { cause: err });
      throw err;
    }
    const bytes = new Uint8Array(Buffer.from(envelope, "utf8"));
    const ids = await directory.deviceIds(message.from, message.to);
    let recipients: DeviceAddress[] = ids.map((id) => ({ jid: message.to, device: id }));
    let stored: { id: number; row: NewOutboxRow } | undefined;
    // Encrypted first: with sessions in place (every message but a conversation's first) a
    // check before it would only repeat what the encryption checks under the same lock (#15).
    // A device without a usable session fails it before anything is encrypted or written; its
    // bundle is fetched then, and the encryption runs again.
    for (let attempt = 0; ; attempt++) {
      try {
        stored = await this.encryptIntoOutbox(
          device,
          originId,
          message.to,
          bytes,
          recipients,
          message.eventId,
        );
        break;
      } catch (err) {
        // Queued before (a Matrix event retried after a crash between the outbox commit and the
        // core's mapping): the encryption was rolled back with the insert, nothing is sent twice.
        if (err instanceof AlreadyQueued) {
          await this.sendQueuedAgain(deviceJid(device.jid, device.deviceId), originId);
          return originId;
        }
        // A session may also expire between the set-up and the encryption: one more round.
        if (!(err instanceof NoSessionError) || attempt > 1) throw err;
      }
      const absent = await directory.ensureSessions(device, recipients);
      recipients = recipients.filter((r) => !absent.some((a) => a.device === r.device));
    }
    if (stored !== undefined) this.options.outbox.sendCommitted(stored.id, stored.row);
    return originId;
  }

  /**
   * A group message (§17.4, §17.5): rotates the sender key first when a participant left or was
   * removed or a member device went away (`rotate_pending`), puts the current SKDM 1:1-encrypted
   * in the header for every member device that does not hold it yet, and encrypts the envelope
   * once with the sender key (never per member). The devices that got the key are recorded in
   * the transaction that stores the stanza in the outbox, with the envelope kept for group
   * retries (§17.6, E29: every member device counts as intended).
   */
  async sendGroupMessage(message: {
    from: BareJid;
    group: BareJid;
    content: ContentElement[];
    eventId?: string;
  }): Promise<MessageId> {
    const { session, directory, now, groups } = this.options;
    if (groups === undefined || !this.negotiated(FEATURE.groups)) {
      throw new ProviderError("unsupported", "groups were not negotiated");
    }
    this.checkFeatures(message.content);
    const { from, group } = message;
    const device = await this.localDevice(from);
    const senderJid = deviceJid(device.jid, device.deviceId);
    const originId =
      message.eventId === undefined
        ? messageId(randomUUID())
        : originIdForEvent(from, message.eventId);
    if (message.eventId !== undefined) {
      const queued = await SqlRunner.of(this.options.knex).connection((tx) =>
        tables.outbox.exists(tx, senderJid, originId),
      );
      if (queued) {
        await this.sendQueuedAgain(senderJid, originId);
        return originId;
      }
    }
    const stored = await this.groupOf(from, group);
    const members = stored.participants.filter((p) => p.jid !== from).map((p) => p.jid as BareJid);
    const rotated = stored.rotatePending;
    const distribution = rotated
      ? await device.groups.rotate(group)
      : await device.groups.distribution(group);
    const holders = rotated
      ? new Set<string>()
      : await groups.holders(from, group, distribution.distributionId);
    const allDevices: DeviceAddress[] = [];
    for (const member of members) {
      for (const id of await directory.deviceIds(from, member)) {
        allDevices.push({ jid: member, device: id });
      }
    }
    let lacking = allDevices.filter((d) => !holders.has(`${d.jid}/${d.device}`));
    if (lacking.length > 0) {
      const absent = await directory.ensureSessions(device, lacking);
      lacking = lacking.filter(
        (d) => !absent.some((a) => a.jid === d.jid && a.device === d.device),
      );
    }
    const limits = { maxEnvelopeBytes: session.limits["max-envelope-bytes"] };
    const time = new Date(now());
    // One pad for the key's envelope and every distribution stanza's: their envelopes are then
    // equally long, so the header measured here tells how many keys a distribution stanza holds.
    // (With a pad each, a stanza's keys grew by up to 270 bytes apiece and overflowed.)
    const skdmPad = randomRpad();
    let envelope: Uint8Array;
    let skdmEnvelope: Uint8Array;
    try {
      envelope = utf8(
        encodeEnvelope({ content: message.content, id: originId, time, to: group, from }, limits),
      );
      skdmEnvelope = utf8(
        encodeEnvelope(
          {
            content: [{ kind: "sender-key", group, skdm: distribution.skdm }],
            id: originId,
            time,
            to: group,
            from,
          },
          { ...limits, rpad: skdmPad },
        ),
      );
    } catch (err) {
      if (err instanceof CodecError)
        throw new ProviderError("too-large", err.message, { cause: err });
      throw err;
    }
    const maxStanza = session.limits["max-stanza-bytes"];
    let queued: { id: number; row: NewOutboxRow } | undefined;
    const stanzaOf = (
      id: MessageId,
      recipients: readonly DeviceAddress[],
      keys: readonly EncryptedKey[],
      ciphertext: Uint8Array | undefined,
    ): string => {
      const byJid = new Map<string, WireKey[]>();
      for (const [i, k] of keys.entries()) {
        const jid = recipients[i]?.jid ?? "";
        byJid.set(jid, [...(byJid.get(jid) ?? []), wireKey(k)]);
      }
      return exactStanza(
        buildEncryptedMessage({
          type: "groupchat",
          from: senderJid,
          to: group,
          originId: id,
          encrypted: {
            sid: device.deviceId,
            keyGroups: [...byJid].map(([jid, ks]) => ({ jid: jid as BareJid, keys: ks })),
            group: ciphertext,
            retry: undefined,
          },
        }),
      );
    };
    const store = async (
      trx: Tx,
      recipients: readonly DeviceAddress[],
      keys: readonly EncryptedKey[],
      ciphertext: Uint8Array,
    ) => {
      const stanza = stanzaOf(originId, recipients, keys, ciphertext);
      const bytes = Buffer.byteLength(stanza, "utf8");
      if (bytes > maxStanza) {
        // Refused before the commit, so that no ratchet advances for a stanza never sent.
        if (keys.length > 0) throw new HeaderTooLarge(bytes, recipients);
        throw new ProviderError(
          "too-large",
          `the group stanza exceeds max-stanza-bytes ${maxStanza}`,
        );
      }
      const row: NewOutboxRow = {
        kind: "message",
        senderJid,
        conversationJid: group,
        toJid: group,
        originId,
        stanza,
        eventId: message.eventId,
      };
      await groups.recordHolders(
        trx,
        from,
        group,
        distribution.distributionId,
        recipients,
        rotated,
        stored.rotation,
      );
      await rememberEnvelope(
        trx,
        device.state,
        { originId, conversationJid: group },
        envelope,
        allDevices,
      );
      queued = { id: await this.options.outbox.insertSent(trx, row), row };
    };
    // One groupEncrypt per message, never per member. Its chain step commits first: a crash
    // before the outbox commit only skips an iteration, which receivers tolerate.
    const ciphertext = await device.groups.encrypt(group, envelope);
    try {
      if (lacking.length === 0) {
        await SqlRunner.of(this.options.knex).transaction((trx) => store(trx, [], [], ciphertext));
      } else {
        await this.withSessions(device, lacking, (recipients) =>
          device.sessions.encryptForDevices(skdmEnvelope, recipients, {
            onCommit: (keys, trx) => store(trx, recipients, keys, ciphertext),
          }),
        );
      }
    } catch (err) {
      if (!(err instanceof HeaderTooLarge)) throw err;
      // The devices of the refused header: those set up again above without the ones gone.
      lacking = [...err.recipients];
      // §17.4: the keys go ahead in distribution stanzas (each its own origin-id and envelope,
      // stored with the devices it serves), then the message with an empty header. The outbox
      // sends in creation order and holds later messages behind a waiting one (§15.6).
      // The header's keys cost what the same keys cost in a distribution stanza (same envelope
      // length); what else the stanza holds is measured, not guessed. The slack covers keys whose
      // ciphertexts differ by a few bytes (protobuf varints).
      const bare = Buffer.byteLength(stanzaOf(originId, [], [], undefined), "utf8");
      const withGroup = Buffer.byteLength(stanzaOf(originId, [], [], ciphertext), "utf8");
      const perKey = (err.bytes - withGroup) / lacking.length;
      const perStanza = Math.max(1, Math.floor((maxStanza - bare - 1024) / (perKey + 16)));
      for (let i = 0; i < lacking.length; i += perStanza) {
        await this.distribute(device, group, distribution.skdm, lacking.slice(i, i + perStanza), {
          stanzaOf,
          time,
          limits,
          rpad: skdmPad,
          maxStanza,
          record: (trx, recipients) =>
            groups.recordHolders(
              trx,
              from,
              group,
              distribution.distributionId,
              recipients,
              rotated && i === 0,
              stored.rotation,
            ),
        });
      }
      await SqlRunner.of(this.options.knex).transaction((trx) => store(trx, [], [], ciphertext));
    }
    if (queued !== undefined) this.options.outbox.sendCommitted(queued.id, queued.row);
    return originId;
  }

  /** One distribution stanza (§17.4): the current SKDM for `recipients`, no `<group>`. */
  private async distribute(
    device: DeviceCrypto,
    group: BareJid,
    skdm: Uint8Array,
    recipients: readonly DeviceAddress[],
    how: {
      stanzaOf: (
        id: MessageId,
        recipients: readonly DeviceAddress[],
        keys: readonly EncryptedKey[],
        ciphertext: undefined,
      ) => string;
      time: Date;
      limits: { maxEnvelopeBytes: number };
      rpad: string;
      maxStanza: number;
      record: (trx: Tx, recipients: readonly DeviceAddress[]) => Promise<void>;
    },
  ): Promise<void> {
    const id = messageId(randomUUID());
    const envelope = utf8(
      encodeEnvelope(
        {
          content: [{ kind: "sender-key", group, skdm }],
          id,
          time: how.time,
          to: group,
          from: device.jid,
        },
        { ...how.limits, rpad: how.rpad },
      ),
    );
    let queued: { id: number; row: NewOutboxRow } | undefined;
    await this.withSessions(device, recipients, async (current) => {
      // Every device of this stanza gone since the header was measured: nothing to send.
      if (current.length === 0) return;
      await device.sessions.encryptForDevices(envelope, current, {
        onCommit: async (keys, trx) => {
          const stanza = how.stanzaOf(id, current, keys, undefined);
          if (Buffer.byteLength(stanza, "utf8") > how.maxStanza) {
            throw new ProviderError(
              "too-large",
              `a distribution stanza for ${current.length} device(s) exceeds max-stanza-bytes ${how.maxStanza}`,
            );
          }
          const row: NewOutboxRow = {
            kind: "message",
            senderJid: deviceJid(device.jid, device.deviceId),
            conversationJid: group,
            toJid: group,
            originId: id,
            stanza,
          };
          await how.record(trx, current);
          queued = { id: await this.options.outbox.insertSent(trx, row), row };
        },
      });
    });
    if (queued !== undefined) this.options.outbox.sendCommitted(queued.id, queued.row);
  }

  /**
   * Runs `encrypt` (a group send's SKDM encryption: the header's, or one distribution stanza's)
   * for `recipients`, whose sessions were set up before. A session can be gone when the
   * encryption takes the lock: archived for a retry answer to that device (§12.5) or dropped by a
   * devices-changed notice; the encryption then refuses (NoSessionError) before anything is
   * written. As for 1:1, the sessions are set up again and `encrypt` runs again, up to two more
   * rounds, without the devices the directory no longer has a bundle for.
   */
  private async withSessions(
    device: DeviceCrypto,
    recipients: readonly DeviceAddress[],
    encrypt: (recipients: readonly DeviceAddress[]) => Promise<unknown>,
  ): Promise<void> {
    let current = recipients;
    for (let attempt = 0; ; attempt++) {
      try {
        await encrypt(current);
        return;
      } catch (err) {
        if (!(err instanceof NoSessionError) || attempt > 1) throw err;
      }
      const absent = await this.options.directory.ensureSessions(device, current);
      current = current.filter(
        (d) => !absent.some((a) => a.jid === d.jid && a.device === d.device),
      );
    }
  }

  /** The stored group, fetched once if unknown; refused if the user is no member. */
  private async groupOf(local: BareJid, group: BareJid): Promise<StoredGroup> {
    const { groups, fetchGroup } = this.options;
    let stored = await groups?.get(local, group);
    if (stored === undefined && fetchGroup !== undefined) {
      await fetchGroup(local, group);
      stored = await groups?.get(local, group);
    }
    if (stored === undefined || !stored.participants.some((p) => p.jid === local)) {
      throw new ProviderError("not-member", `${local} is not a member of ${group}`);
    }
    return stored;
  }

  /**
   * `stale-device-list` (§12.3): updates the cached list, keeps the ciphertexts of devices still
   * listed, drops those of removed ones, encrypts the stored envelope for the added ones only,
   * and replaces the outbox stanza (same origin-id) in the transaction of that encryption.
   */
  async handleStale(row: OutboxRow, stale: StaleDeviceList): Promise<void> {
    const { crypto, vault, knex, now, directory } = this.options;
    if (stale.jid !== row.conversationJid) {
      throw new Error(`stale-device-list for ${stale.jid} on a message to ${row.conversationJid}`);
    }
    const original = parseXml(row.stanza);
    const encryptedEl = optionalChild(original, "encrypted", NS.e2ee);
    if (encryptedEl === undefined) throw new Error("outbox message without <encrypted>");
    const encrypted = decodeEncrypted(encryptedEl);
    const have = encrypted.keyGroups.find((g) => g.jid === stale.jid)?.keys ?? [];
    await directory.storeDeviceList(stale.jid, null, stale.devices);
    const kept = have.filter((k) => stale.devices.includes(k.rid));
    const added = stale.devices.filter((id) => !have.some((k) => k.rid === id));
    const rebuild = (keys: readonly WireKey[]): string =>
      exactStanza(
        buildEncryptedMessage({
          type: "chat",
          from: row.senderJid,
          to: row.toJid,
          originId: row.originId,
          encrypted: {
            ...encrypted,
            keyGroups: [{ jid: stale.jid, keys: [...keys].sort((a, b) => a.rid - b.rid) }],
          },
        }),
      );
    if (added.length === 0) {
      await tables.outbox.replaceStanza(knex, row.id, rebuild(kept), now());
      return;
    }
    const device = await crypto.device(bareOf(row.senderJid), encrypted.sid);
    // Rows queued before issue #15 hold a sealed copy of their own; later ones find the envelope
    // kept for retry answers (remembered in the transaction that queued the row, and kept while
    // the row is unresolved: `tables.outbox.unresolvedOrigins`).
    const envelope =
      row.envelopeEnc === null
        ? await device.retries.sentEnvelope(row.originId)
        : new Uint8Array(vault.open(row.envelopeEnc, envelopeRef(row.senderJid, row.originId)));
    if (envelope === undefined) throw new Error("outbox message without its envelope");
    let recipients: DeviceAddress[] = added.map((id) => ({ jid: stale.jid, device: id }));
    const absent = await directory.ensureSessions(device, recipients);
    recipients = recipients.filter((r) => !absent.some((a) => a.device === r.device));
    await device.sessions.encryptForDevices(envelope, recipients, {
      remember: { originId: row.originId, conversationJid: row.conversationJid },
      onCommit: async (keys, trx) => {
        await tables.outbox.replaceStanza(
          trx,
          row.id,
          rebuild([...kept, ...keys.map(wireKey)]),
          now(),
        );
      },
    });
  }

  /** A read marker (§15.7); only when `#displayed` was negotiated. */
  async sendDisplayed(
    local: BareJid,
    to: BareJid,
    ref: MessageRef,
    type: "chat" | "groupchat" = "chat",
  ): Promise<MessageId> {
    if (!this.options.session.hasFeature(FEATURE.displayed)) {
      throw new ProviderError("unsupported", "read markers were not negotiated");
    }
    const device = await this.localDevice(local);
    const from = deviceJid(local, device.deviceId);
    const originId = messageId(randomUUID());
    const row: NewOutboxRow = {
      kind: "displayed",
      senderJid: from,
      conversationJid: to,
      toJid: to,
      originId,
      stanza: exactStanza(buildDisplayed({ type, from, to, originId, marker: ref })),
    };
    const id = await SqlRunner.of(this.options.knex).connection((tx) =>
      this.options.outbox.insertSent(tx, row),
    );
    this.options.outbox.sendCommitted(id, row);
    return originId;
  }

  /**
   * Typing (§15.8): not stored, dropped when it cannot go out now; `composing` at most once per
   * 10 s per conversation. Returns whether it was sent.
   */
  async sendTyping(
    local: BareJid,
    to: BareJid,
    state: ChatState,
    type: "chat" | "groupchat" = "chat",
  ): Promise<boolean> {
    const { session, now } = this.options;
    if (!session.hasFeature(FEATURE.chatstates) || !session.ready) return false;
    const key = `${local} ${to}`;
    if (state === "composing") {
      const last = this.composingSentAt.get(key);
      if (last !== undefined && now() - last < COMPOSING_INTERVAL_MS) return false;
    }
    const device = await this.localDevice(local);
    try {
      await session.send(
        buildChatState({ type, from: deviceJid(local, device.deviceId), to, state }),
      );
    } catch (err) {
      this.log.debug({ err: describeError(err) }, "typing notification dropped");
      return false;
    }
    if (state === "composing") this.composingSentAt.set(key, now());
    else this.composingSentAt.delete(key);
    return true;
  }

  /**
   * Whether a feature may be used: negotiated by this run's hello, or not known yet because no
   * hello has succeeded since the start. A message then goes to the outbox, which sends nothing
   * before the hello; refusing it would lose what the homeserver pushes at start-up (its queued
   * transactions arrive before the gatekeeper answers). A feature the hello then lacks makes the
   * gatekeeper refuse the stanza, which reports the failure as for any refusal.
   */
  private negotiated(feature: string): boolean {
    const { session } = this.options;
    return session.info === undefined || session.hasFeature(feature);
  }

  private checkFeatures(content: readonly ContentElement[]): void {
    for (const element of content) {
      if (element.kind === "unknown") {
        throw new ProviderError("unsupported", `unknown content element ${element.name}`);
      }
      const feature = CONTENT_FEATURE[element.kind];
      if (feature !== undefined && !this.negotiated(feature)) {
        throw new ProviderError(
          "unsupported",
          `content <${element.kind}> needs feature ${feature}, which was not negotiated`,
        );
      }
    }
  }

  /**
   * The message of a Matrix event handled again was queued before. If it may never have left, it
   * is transmitted now, in the event's place: a commit can be reported failed although it
   * committed (the connection was lost with the COMMIT's answer), and the event is then handled
   * again; left to its retransmission a minute later, the conversation's next messages would
   * overtake it (§15.6). A second transmission is harmless: the gatekeeper keeps one per
   * origin-id (§15.4), and these are the stored bytes.
   */
  private async sendQueuedAgain(senderJid: string, originId: MessageId): Promise<void> {
    const rows = await SqlRunner.of(this.options.knex).connection((tx) =>
      tables.outbox.byOrigin(tx, senderJid, originId),
    );
    const row = rows.find((r) => r.kind === "message");
    // "sent" is how the commit left it; any later state means the outbox has taken it over.
    if (row?.state !== "sent") return;
    this.options.outbox.sendCommitted(row.id, {
      kind: row.kind,
      senderJid: row.senderJid,
      conversationJid: row.conversationJid,
      toJid: row.toJid,
      originId: row.originId,
      stanza: row.stanza,
    });
  }

  private async encryptIntoOutbox(
    device: DeviceCrypto,
    originId: MessageId,
    to: BareJid,
    envelope: Uint8Array,
    recipients: readonly DeviceAddress[],
    eventId: string | undefined,
  ): Promise<{ id: number; row: NewOutboxRow } | undefined> {
    const senderJid = deviceJid(device.jid, device.deviceId);
    let stored: { id: number; row: NewOutboxRow } | undefined;
    const maxStanza = this.options.session.limits["max-stanza-bytes"];
    await device.sessions.encryptForDevices(envelope, recipients, {
      remember: { originId, conversationJid: to },
      onCommit: async (keys, trx) => {
        const stanza = exactStanza(
          buildEncryptedMessage({
            type: "chat",
            from: senderJid,
            to,
            originId,
            encrypted: {
              sid: device.deviceId,
              keyGroups: [{ jid: to, keys: keys.map(wireKey) }],
              group: undefined,
              retry: undefined,
            },
          }),
        );
        // Refused before the commit, so that no ratchet advances for a stanza never sent.
        if (Buffer.byteLength(stanza, "utf8") > maxStanza) {
          throw new ProviderError("too-large", `the stanza exceeds max-stanza-bytes ${maxStanza}`);
        }
        const row: NewOutboxRow = {
          kind: "message",
          senderJid,
          conversationJid: to,
          toJid: to,
          originId,
          stanza,
          eventId,
        };
        if (eventId === undefined) {
          stored = { id: await this.options.outbox.insertSent(trx, row), row };
          return;
        }
        const id = await this.options.outbox.insertSentIfAbsent(trx, row);
        // Thrown to roll back the session step and the remembered envelope with it.
        if (id === undefined) throw new AlreadyQueued();
        stored = { id, row };
      },
    });
    return stored;
  }
}

/** An outbox row for the Matrix event's origin-id exists: thrown in the encrypt transaction. */
class AlreadyQueued extends Error {
  constructor() {
    super("a row for this origin-id is queued already");
    this.name = "AlreadyQueued";
  }
}

const wireKey = (k: EncryptedKey): WireKey => ({
  rid: k.rid,
  kex: k.kex,
  ciphertext: k.ciphertext,
});

/** A `<received>` row (§15.7), for the receiver to store with the hand-over's commit. */
export function receiptRow(
  fromFull: string,
  to: BareJid,
  refs: readonly MessageRef[],
  type: "chat" | "groupchat" = "chat",
  originId: MessageId = messageId(randomUUID()),
): NewOutboxRow {
  return {
    kind: "receipt",
    senderJid: fromFull,
    conversationJid: to,
    toJid: to,
    originId,
    stanza: exactStanza(buildReceipt({ type, from: fromFull, to, originId, receipts: refs })),
  };
}

/**
 * The origin-id of the message bridging Matrix event `eventId` for `from`: UUIDv4-shaped (§4,
 * "UUIDv4 RECOMMENDED") from a hash, so the same event always gets the same id and the gatekeeper
 * would also de-duplicate a second transmission (§15.4), while the id reveals nothing of the event.
 */
export function originIdForEvent(from: BareJid, eventId: string): MessageId {
  // The one-shot hash: a Hash object per message cost more than the digest (issue #15).
  const b = hash("sha256", `mwi-origin\n${from}\n${eventId}`, "buffer");
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString("hex");
  return messageId(
    `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`,
  );
}

/**
 * The origin-id of the `<received>` that device `fromFull` sends once message `ref` is handed
 * over (§15.7): derived like `originIdForEvent`, so that a hand-over repeated after a crash
 * writes the same outbox row, which the unique key keeps once (issue #15: no transaction needed).
 */
export function originIdForReceipt(fromFull: string, ref: MessageRef): MessageId {
  return originIdForEvent(fromFull as BareJid, `received\n${ref.author}\n${ref.id}`);
}

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "utf8"));

/** The header with every lacking key would not fit one stanza: distribution stanzas instead. */
class HeaderTooLarge extends Error {
  constructor(
    readonly bytes: number,
    readonly recipients: readonly DeviceAddress[],
  ) {
    super(`group header of ${bytes} bytes exceeds max-stanza-bytes`);
  }
}
