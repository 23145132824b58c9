import { randomUUID } from "node:crypto";
import {
  encodeEnvelope,
  type ChatState,
  type ContentElement,
  type MessageRef,
} from "../../src/interop/codec/index.js";
import type { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import type { DeviceCrypto } from "../../src/interop/crypto/signal-crypto.js";
import type { EncryptedKey } from "../../src/interop/crypto/types.js";
import { BridgeError } from "../../src/util/errors.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import type { Sent } from "../delivery/outbound.js";
import type { LocalDelivery } from "../delivery/local.js";
import type { Gatekeeper } from "../gatekeeper.js";
import { toRemote } from "./convert.js";
import { featuresOf, requireFeatures } from "./features.js";
import { domainOf } from "../context.js";
import { FEATURE } from "../../src/interop/codec/index.js";
import type { UserDevices } from "./devices.js";

/** How a simulated user sends; `forgeEnvelope` makes a misbehaving sender for security tests. */
export interface SendOptions {
  device?: DeviceId;
  originId?: MessageId;
  /**
   * Envelope fields that lie about the stanza they travel in (PROTOCOL.md §12.2): the envelope is
   * encrypted with these, the stanza still carries the true sender, recipient and origin-id.
   */
  forgeEnvelope?: { to?: BareJid; from?: BareJid; id?: MessageId };
  /**
   * Log what was sent as `sent` in the user's log, for the admin API's chat view. Off for
   * in-process senders (tests, the benchmark), whose hot path needs no extra write.
   */
  record?: boolean;
}

/** A message encrypted for its recipient's devices, not yet sent ({@link UserSender.prepare}). */
export interface PreparedSend {
  readonly from: BareJid;
  readonly device: DeviceId;
  readonly to: BareJid;
  readonly originId: MessageId;
  readonly keys: ReturnType<typeof keyOf>[];
}

/**
 * What a simulated gatekeeper user sends to provider users: the envelope of §12.2 encrypted for
 * every device of the recipient (bundles fetched from the directory where no session exists),
 * receipts, markers, typing, and answers to retry requests (§12.5). Runs in the gatekeeper's order.
 */
export class UserSender {
  constructor(
    private readonly gatekeeper: Gatekeeper,
    private readonly crypto: SignalCrypto,
    private readonly devices: UserDevices,
  ) {}

  async sendContent(
    jid: BareJid,
    to: BareJid,
    content: ContentElement[],
    options: SendOptions = {},
  ): Promise<{ originId: MessageId } & Sent> {
    return this.deliver(await this.prepare(jid, to, content, options));
  }

  /**
   * The Signal work of a send, without sending: the benchmark prepares a run's messages before
   * it is timed, so that its load generator's crypto does not compete with the bridge (bench/).
   * Prepared messages of one sender must be delivered in the order they were prepared.
   */
  async prepare(
    jid: BareJid,
    to: BareJid,
    content: ContentElement[],
    options: SendOptions = {},
  ): Promise<PreparedSend> {
    requireFeatures(this.negotiated(to), featuresOf(content));
    const device = await this.sendingDevice(jid, options.device);
    const keys = this.gatekeeper.services.keys;
    const list = await keys.deviceList(to);
    const targets = list?.devices ?? [];
    if (list === undefined || targets.length === 0)
      throw new BridgeError("not-reachable", `${to} has no devices`);
    await this.crypto.storeDeviceList(to, list.version, targets);
    const recipients = targets.map((d) => ({ jid: to, device: d }));
    const missing = await device.sessions.devicesWithoutSession(recipients);
    if (missing.length > 0) {
      const bundles = await keys.fetchBundles(
        to,
        missing.map((m) => m.device),
      );
      for (const b of bundles) await device.sessions.processBundle(to, toRemote(b));
    }
    const originId = options.originId ?? (randomUUID() as MessageId);
    const envelope = encodeEnvelope(
      {
        content,
        id: options.forgeEnvelope?.id ?? originId,
        time: new Date(this.gatekeeper.now()),
        to: options.forgeEnvelope?.to ?? to,
        from: options.forgeEnvelope?.from ?? jid,
      },
      { maxEnvelopeBytes: this.gatekeeper.ctx.limits["max-envelope-bytes"] },
    );
    const encrypted = await device.sessions.encryptForDevices(
      Buffer.from(envelope, "utf8"),
      recipients,
      {
        remember: { originId, conversationJid: to },
      },
    );
    return { from: jid, device: device.deviceId, to, originId, keys: encrypted.map(keyOf) };
  }

  /** Sends what {@link prepare} made. */
  async deliver(prepared: PreparedSend): Promise<{ originId: MessageId } & Sent> {
    const sent = await this.gatekeeper.outbound.sendEncrypted({
      from: prepared.from,
      device: prepared.device,
      to: prepared.to,
      originId: prepared.originId,
      encrypted: {
        sid: prepared.device,
        keyGroups: [{ jid: prepared.to, keys: prepared.keys }],
        group: undefined,
        retry: undefined,
      },
    });
    return { originId: prepared.originId, ...sent };
  }

  async sendReceipt(jid: BareJid, device: DeviceId, to: BareJid, refs: MessageRef[]) {
    return this.gatekeeper.outbound.sendReceipt(jid, device, to, refs);
  }

  async sendDisplayed(jid: BareJid, to: BareJid, ref: MessageRef, device?: DeviceId) {
    requireFeatures(this.negotiated(to), [FEATURE.displayed]);
    const d = await this.sendingDevice(jid, device);
    if (!(await this.gatekeeper.accounts.get(jid))?.readMarkers) return false;
    return this.gatekeeper.outbound.sendDisplayed(jid, d.deviceId, to, ref);
  }

  async sendTyping(jid: BareJid, to: BareJid, state: ChatState, device?: DeviceId) {
    requireFeatures(this.negotiated(to), [FEATURE.chatstates]);
    const d = await this.sendingDevice(jid, device);
    return this.gatekeeper.outbound.sendChatState(jid, d.deviceId, to, state);
  }

  /**
   * Answers a provider's retry request under the rules of §12.5: only for a stored envelope, a
   * count not yet answered, and a device that was (or later became) a recipient.
   */
  async answerRetry(d: Extract<LocalDelivery, { kind: "retry" }>): Promise<boolean> {
    if (d.toDevice === undefined) return false;
    const device = await this.crypto.device(d.to, d.toDevice);
    const requester = { jid: d.from, device: d.fromDevice };
    const auth = await device.retries.authorize({
      originId: d.retry.id,
      requester,
      count: d.retry.count,
      windowMs: this.gatekeeper.ctx.limits["retry-window-seconds"] * 1000,
    });
    if (!auth.ok) return false;
    await device.retries.prepareAnswer(requester);
    const [bundle] = await this.gatekeeper.services.keys.fetchBundles(d.from, [d.fromDevice]);
    if (bundle === undefined) return false;
    await device.sessions.processBundle(d.from, toRemote(bundle));
    const key = await device.retries.encryptAnswer({
      originId: d.retry.id,
      requester,
      count: d.retry.count,
      envelope: auth.envelope,
    });
    await this.gatekeeper.outbound.sendEncrypted({
      from: d.to,
      device: d.toDevice,
      to: d.from,
      toDevice: d.fromDevice,
      originId: d.retry.id,
      encrypted: {
        sid: d.toDevice,
        keyGroups: [{ jid: d.from, keys: [keyOf(key)] }],
        group: undefined,
        retry: d.retry.count,
      },
    });
    return true;
  }

  private negotiated(to: BareJid): ReadonlySet<string> {
    return this.gatekeeper.services.hello.features(domainOf(to));
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

const keyOf = (k: EncryptedKey) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext });
