import {
  checkEnvelopeBinding,
  decodeEnvelope,
  encodeBase64,
  tryDecode,
} from "../../src/interop/codec/index.js";
import type { QueryTarget } from "../../src/db/sql.js";
import type { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import { describeError } from "../../src/util/errors.js";
import { DuplicateMessageError, NoSenderKeyError } from "../../src/interop/crypto/errors.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import type { LocalDelivery } from "../delivery/local.js";
import type { Gatekeeper } from "../gatekeeper.js";
import type { UserDevices } from "./devices.js";
import type { UserLog } from "./log.js";
import type { UserSender } from "./send.js";
import type { UserGroups } from "./groups.js";

type EncryptedDelivery = Extract<LocalDelivery, { kind: "encrypted" }>;

/**
 * The simulated users' side of deliveries from providers: every device decrypts its key, the
 * envelope is checked against the stanza (§12.2), the message is logged once per user, and the
 * first device that decrypted sends `<received>` (E19). Failures lead to retry requests (§12.5).
 */
export class UserReceiver {
  constructor(
    private readonly gatekeeper: Gatekeeper,
    private readonly crypto: SignalCrypto,
    private readonly devices: UserDevices,
    private readonly log: UserLog,
    private readonly sender: UserSender,
    private readonly groups: UserGroups,
  ) {}

  receive = async (d: LocalDelivery): Promise<void> => {
    await this.gatekeeper.run(async () => {
      switch (d.kind) {
        case "encrypted":
          return d.group === undefined ? this.decrypt(d) : this.decryptGroup(d);
        case "retry":
          if (d.group === undefined) await this.sender.answerRetry(d);
          else await this.groups.answerRetry(d);
          return this.record(d, "retry", {
            from: d.from,
            device: d.fromDevice,
            group: d.group,
            ...d.retry,
          });
        case "receipt":
          return this.record(d, "receipt", { from: d.from, refs: d.receipts, group: d.group });
        case "displayed":
          return this.record(d, "displayed", { from: d.from, ref: d.marker, group: d.group });
        case "chat-state":
          return this.record(d, "chat-state", { from: d.from, state: d.state, group: d.group });
      }
    });
  };

  /** Logs what the user received and completes the durable delivery in one transaction. */
  private async record(d: LocalDelivery, kind: string, data: Record<string, unknown>) {
    const { pendingId } = d;
    await this.gatekeeper.ctx.knex.transaction(async (trx) => {
      await this.log.add(d.to, kind, data, trx);
      if (pendingId !== undefined) await this.gatekeeper.pending.complete(trx, pendingId);
    });
  }

  private async decrypt(d: EncryptedDelivery): Promise<void> {
    const originId = d.originId as MessageId;
    const { knex } = this.gatekeeper.ctx;
    const complete = async (db: QueryTarget) => {
      if (d.pendingId !== undefined) await this.gatekeeper.pending.complete(db, d.pendingId);
    };
    // A redelivery after a crash (or a provider's retransmission) of what the user already has.
    if (await this.log.hasMessage(d.to, d.from, originId)) return complete(knex);
    const group = d.encrypted.keyGroups.find((g) => g.jid === d.to);
    const targets = d.toDevice === undefined ? await this.devices.active(d.to) : [d.toDevice];
    let first: DeviceId | undefined;
    for (const deviceId of targets) {
      const key = group?.keys.find((k) => k.rid === deviceId);
      if (key === undefined) continue;
      const device = await this.crypto.device(d.to, deviceId);
      // The advanced session, the log entry and the completed delivery commit together, so a
      // crash can neither lose the message nor leave a session that cannot decrypt it again.
      let logged: boolean;
      try {
        logged = await device.sessions.decrypt(
          {
            senderJid: d.from,
            senderDevice: d.fromDevice,
            kex: key.kex,
            ciphertext: key.ciphertext,
          },
          (plaintext, trx) => this.logDecrypted(d, deviceId, plaintext, first === undefined, trx),
        );
      } catch (err) {
        await this.requestRetry(d, deviceId, describeError(err));
        continue;
      }
      if (logged) first ??= deviceId;
    }
    if (first === undefined) return complete(knex);
    await this.sender.sendReceipt(d.to, first, d.from, [{ id: originId, author: d.from }]);
  }

  /**
   * Checks the envelope against the stanza (§12.2) and, for the first device that decrypted,
   * logs the message and completes the delivery with `trx`. Returns whether it logged.
   */
  private async logDecrypted(
    d: EncryptedDelivery,
    device: DeviceId,
    plaintext: Uint8Array,
    isFirst: boolean,
    trx: QueryTarget,
  ): Promise<boolean> {
    const originId = d.originId as MessageId;
    const decoded = tryDecode(() => {
      const env = decodeEnvelope(plaintext, {
        maxEnvelopeBytes: this.gatekeeper.ctx.limits["max-envelope-bytes"],
      });
      checkEnvelopeBinding(env, { from: d.from, to: d.group ?? d.to, originId });
      return env;
    });
    if (!decoded.ok) {
      const reason = decoded.error.message;
      await this.log.add(d.to, "discarded", { from: d.from, originId, reason }, trx);
      return false;
    }
    if (!isFirst) return false;
    await this.log.add(
      d.to,
      "message",
      {
        from: d.from,
        fromDevice: d.fromDevice,
        originId,
        stanzaId: d.stanzaId,
        seq: d.seq,
        stamp: d.stamp.toISOString(),
        retry: d.encrypted.retry,
        device,
        group: d.group,
        envelope: Buffer.from(plaintext).toString("utf8"),
        content: JSON.parse(
          JSON.stringify(
            decoded.value.content.filter((c) => c.kind !== "sender-key"),
            bytesAsBase64,
          ),
        ) as unknown,
      },
      trx,
    );
    if (d.pendingId !== undefined) await this.gatekeeper.pending.complete(trx, d.pendingId);
    return true;
  }

  /**
   * A group delivery (§17.4): each device first processes its header key (1:1 decrypt, envelope
   * checked against the group, the SKDM bound to the group), then `groupDecrypt`s `<group>`. A
   * header envelope with content other than `<sender-key>` is a retry re-send and is the
   * message. The first device that shows it logs it and sends the group receipt. A missing sender
   * key asks the author for a group retry at once: the gatekeeper delivers one sender's stanzas
   * in acceptance order, so a distribution stanza cannot arrive later.
   */
  private async decryptGroup(d: EncryptedDelivery): Promise<void> {
    const group = d.group as BareJid;
    const originId = d.originId as MessageId;
    const { knex } = this.gatekeeper.ctx;
    const complete = async (db: QueryTarget) => {
      if (d.pendingId !== undefined) await this.gatekeeper.pending.complete(db, d.pendingId);
    };
    if (await this.log.hasMessage(d.to, d.from, originId)) return complete(knex);
    const targets = d.toDevice === undefined ? await this.devices.active(d.to) : [d.toDevice];
    const sender = { jid: d.from, device: d.fromDevice };
    let first: DeviceId | undefined;
    for (const deviceId of targets) {
      const device = await this.crypto.device(d.to, deviceId);
      const key = d.encrypted.keyGroups
        .find((g) => g.jid === d.to)
        ?.keys.find((k) => k.rid === deviceId);
      let shown = false;
      if (key !== undefined) {
        try {
          const plaintext = await device.sessions.decrypt(
            {
              senderJid: d.from,
              senderDevice: d.fromDevice,
              kex: key.kex,
              ciphertext: key.ciphertext,
            },
            async (p) => p,
          );
          const env = decodeEnvelope(plaintext, {
            maxEnvelopeBytes: this.gatekeeper.ctx.limits["max-envelope-bytes"],
          });
          checkEnvelopeBinding(env, { from: d.from, to: group, originId });
          for (const c of env.content) {
            if (c.kind === "sender-key" && c.group === group) {
              await device.groups.processDistribution(group, sender, c.skdm);
            }
          }
          if (env.content.some((c) => c.kind !== "sender-key")) {
            shown = await knex.transaction((trx) =>
              this.logDecrypted(d, deviceId, plaintext, first === undefined, trx),
            );
            if (shown) first ??= deviceId;
            shown = true;
          }
        } catch (err) {
          await this.requestGroupRetry(d, deviceId, "decrypt-failed", describeError(err));
          continue;
        }
      }
      if (shown || d.encrypted.group === undefined) continue;
      try {
        const logged = await device.groups.decrypt(group, sender, d.encrypted.group, (p, trx) =>
          this.logDecrypted(d, deviceId, p, first === undefined, trx),
        );
        if (logged) first ??= deviceId;
      } catch (err) {
        if (err instanceof DuplicateMessageError) continue;
        const reason = err instanceof NoSenderKeyError ? "no-sender-key" : "decrypt-failed";
        await this.requestGroupRetry(d, deviceId, reason, describeError(err));
      }
    }
    if (first === undefined) return complete(knex);
    await this.groups
      .transport(d.to, first, group, {
        kind: "receipt",
        receipts: [{ id: originId, author: d.from }],
      })
      .catch(() => undefined);
  }

  private async requestGroupRetry(
    d: EncryptedDelivery,
    deviceId: DeviceId,
    reason: "decrypt-failed" | "no-sender-key",
    detail: string,
  ): Promise<void> {
    const device = await this.crypto.device(d.to, deviceId);
    const originId = d.originId as MessageId;
    await this.log.add(d.to, "undecryptable", {
      from: d.from,
      originId,
      device: deviceId,
      group: d.group,
      reason: detail,
    });
    const count = await device.retries.nextRequestCount(
      { jid: d.from, device: d.fromDevice },
      originId,
    );
    if (count === null) return;
    await this.groups
      .transport(d.to, deviceId, d.group as BareJid, {
        kind: "retry",
        retry: {
          id: originId,
          count,
          registration: device.registrationId,
          reason,
          author: { jid: d.from, device: d.fromDevice },
        },
      })
      .catch(() => undefined);
  }

  private async requestRetry(d: EncryptedDelivery, deviceId: DeviceId, reason: string) {
    const device = await this.crypto.device(d.to, deviceId);
    const originId = d.originId as MessageId;
    const count = await device.retries.nextRequestCount(
      { jid: d.from, device: d.fromDevice },
      originId,
    );
    await this.log.add(d.to, "undecryptable", { from: d.from, originId, device: deviceId, reason });
    if (count === null) return;
    await this.gatekeeper.outbound
      .sendRetry(d.to, deviceId, d.from, d.fromDevice, {
        id: originId,
        count,
        registration: device.registrationId,
        reason: "decrypt-failed",
        author: undefined,
      })
      .catch(() => false);
  }
}

function bytesAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? encodeBase64(value) : value;
}
