import {
  checkEnvelopeBinding,
  decodeEnvelope,
  encodeBase64,
  tryDecode,
} from "../../src/interop/codec/index.js";
import type { QueryTarget } from "../../src/db/sql.js";
import type { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import { describeError } from "../../src/util/errors.js";
import type { DeviceId, MessageId } from "../../src/util/ids.js";
import type { LocalDelivery } from "../delivery/local.js";
import type { Gatekeeper } from "../gatekeeper.js";
import type { UserDevices } from "./devices.js";
import type { UserLog } from "./log.js";
import type { UserSender } from "./send.js";

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
  ) {}

  receive = async (d: LocalDelivery): Promise<void> => {
    await this.gatekeeper.run(async () => {
      switch (d.kind) {
        case "encrypted":
          return this.decrypt(d);
        case "retry":
          await this.sender.answerRetry(d);
          return this.record(d, "retry", { from: d.from, device: d.fromDevice, ...d.retry });
        case "receipt":
          return this.record(d, "receipt", { from: d.from, refs: d.receipts });
        case "displayed":
          return this.record(d, "displayed", { from: d.from, ref: d.marker });
        case "chat-state":
          return this.record(d, "chat-state", { from: d.from, state: d.state });
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
      checkEnvelopeBinding(env, { from: d.from, to: d.to, originId });
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
        envelope: Buffer.from(plaintext).toString("utf8"),
        content: JSON.parse(JSON.stringify(decoded.value.content, bytesAsBase64)) as unknown,
      },
      trx,
    );
    if (d.pendingId !== undefined) await this.gatekeeper.pending.complete(trx, d.pendingId);
    return true;
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
