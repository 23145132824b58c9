import {
  checkEnvelopeBinding,
  decodeEnvelope,
  encodeBase64,
  tryDecode,
  type ContentElement,
} from "../../src/interop/codec/index.js";
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
          return this.log.add(d.to, "retry", { from: d.from, device: d.fromDevice, ...d.retry });
        case "receipt":
          return this.log.add(d.to, "receipt", { from: d.from, refs: d.receipts });
        case "displayed":
          return this.log.add(d.to, "displayed", { from: d.from, ref: d.marker });
        case "chat-state":
          return this.log.add(d.to, "chat-state", { from: d.from, state: d.state });
      }
    });
  };

  private async decrypt(d: EncryptedDelivery): Promise<void> {
    const originId = d.originId as MessageId;
    if (await this.log.hasMessage(d.to, d.from, originId)) return;
    const group = d.encrypted.keyGroups.find((g) => g.jid === d.to);
    const targets = d.toDevice === undefined ? await this.devices.active(d.to) : [d.toDevice];
    let first: { device: DeviceId; envelope: string; content: ContentElement[] } | undefined;
    for (const deviceId of targets) {
      const key = group?.keys.find((k) => k.rid === deviceId);
      if (key === undefined) continue;
      const device = await this.crypto.device(d.to, deviceId);
      let plaintext: Uint8Array;
      try {
        plaintext = await device.sessions.decrypt(
          {
            senderJid: d.from,
            senderDevice: d.fromDevice,
            kex: key.kex,
            ciphertext: key.ciphertext,
          },
          async (p) => p,
        );
      } catch (err) {
        await this.requestRetry(d, deviceId, describeError(err));
        continue;
      }
      const envelope = Buffer.from(plaintext).toString("utf8");
      const decoded = tryDecode(() => {
        const env = decodeEnvelope(plaintext, {
          maxEnvelopeBytes: this.gatekeeper.ctx.limits["max-envelope-bytes"],
        });
        checkEnvelopeBinding(env, { from: d.from, to: d.to, originId });
        return env;
      });
      if (!decoded.ok) {
        await this.log.add(d.to, "discarded", {
          from: d.from,
          originId,
          reason: decoded.error.message,
        });
        return;
      }
      first ??= { device: deviceId, envelope, content: decoded.value.content };
    }
    if (first === undefined) return;
    await this.log.add(d.to, "message", {
      from: d.from,
      fromDevice: d.fromDevice,
      originId,
      stanzaId: d.stanzaId,
      seq: d.seq,
      stamp: d.stamp.toISOString(),
      retry: d.encrypted.retry,
      device: first.device,
      envelope: first.envelope,
      content: JSON.parse(JSON.stringify(first.content, bytesAsBase64)) as unknown,
    });
    await this.sender.sendReceipt(d.to, first.device, d.from, [{ id: originId, author: d.from }]);
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
