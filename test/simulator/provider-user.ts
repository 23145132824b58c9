import { randomUUID } from "node:crypto";
import {
  buildEncryptedMessage,
  decodeBundlesResult,
  decodeDeviceList,
  decodeEnvelope,
  encodeBundlesFetch,
  encodeDevicesFetch,
  encodeDevicesPublish,
  encodeEnvelope,
  encodePublishedBundle,
  type ContentElement,
  type Encrypted,
} from "../../src/interop/codec/index.js";
import type { XmlElement } from "../../src/interop/codec/xml.js";
import type { DeviceCrypto, SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import type { PublishableBundle } from "../../src/interop/crypto/types.js";
import type { BareJid, DeviceId, MessageId } from "../../src/util/ids.js";
import { toPublished, toRemote } from "../../simulator/users/convert.js";
import { child, type TestProvider } from "./harness.js";

/**
 * A provider user with real Signal keys, driven over the component connection like the bridge
 * would: publishes its bundle and device list, fetches keys, encrypts and decrypts.
 */
export class ProviderUser {
  private constructor(
    readonly jid: BareJid,
    readonly device: DeviceCrypto,
    readonly bundle: PublishableBundle,
    private readonly provider: TestProvider,
  ) {}

  static async create(
    crypto: SignalCrypto,
    provider: TestProvider,
    jid: string,
    deviceId = 1,
    oneTimePreKeys = 5,
  ): Promise<ProviderUser> {
    const { device, bundle } = await crypto.createLocalIdentity(jid as BareJid, {
      deviceId: deviceId as DeviceId,
      oneTimePreKeys,
    });
    return new ProviderUser(jid as BareJid, device, bundle, provider);
  }

  get full(): string {
    return `${this.jid}/${this.device.deviceId}`;
  }

  async publish(devices: number[] = [this.device.deviceId]): Promise<void> {
    const b = await this.provider.iq("set", encodePublishedBundle(toPublished(this.bundle)), {
      from: this.jid,
    });
    if (b.attrs.type !== "result") throw new Error(`bundle refused: ${b.toString()}`);
    const d = await this.provider.iq("set", encodeDevicesPublish(devices as DeviceId[]), {
      from: this.jid,
    });
    if (d.attrs.type !== "result") throw new Error(`device list refused: ${d.toString()}`);
  }

  async fetchDevices(target: BareJid): Promise<DeviceId[]> {
    const r = await this.provider.iq("get", encodeDevicesFetch(target), { from: this.jid });
    if (r.attrs.type !== "result") throw new Error(`device fetch refused: ${r.toString()}`);
    return decodeDeviceList(child(r)).devices;
  }

  /** Fetches bundles for devices without a session and establishes sessions. */
  async prepare(target: BareJid, devices: DeviceId[]): Promise<void> {
    const recipients = devices.map((d) => ({ jid: target, device: d }));
    const missing = await this.device.sessions.devicesWithoutSession(recipients);
    if (missing.length === 0) return;
    const r = await this.provider.iq(
      "get",
      encodeBundlesFetch(
        target,
        missing.map((m) => m.device),
      ),
      { from: this.jid },
    );
    if (r.attrs.type !== "result") throw new Error(`bundle fetch refused: ${r.toString()}`);
    for (const b of decodeBundlesResult(child(r)).bundles) {
      await this.device.sessions.processBundle(target, toRemote(b));
    }
  }

  /** Encrypts content for `devices` of `target` and returns the stanza, unsent. */
  async message(
    target: BareJid,
    content: ContentElement[],
    options: { devices?: DeviceId[]; originId?: string } = {},
  ): Promise<{ stanza: XmlElement; originId: MessageId; encrypted: Encrypted }> {
    const devices = options.devices ?? (await this.fetchDevices(target));
    await this.prepare(target, devices);
    const originId = (options.originId ?? randomUUID()) as MessageId;
    const envelope = encodeEnvelope({
      content,
      id: originId,
      time: new Date(),
      to: target,
      from: this.jid,
    });
    const keys = await this.device.sessions.encryptForDevices(
      Buffer.from(envelope, "utf8"),
      devices.map((d) => ({ jid: target, device: d })),
      { remember: { originId, conversationJid: target } },
    );
    const encrypted: Encrypted = {
      sid: this.device.deviceId,
      keyGroups: [
        {
          jid: target,
          keys: keys.map((k) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext })),
        },
      ],
      group: undefined,
      retry: undefined,
    };
    const stanza = buildEncryptedMessage({
      type: "chat",
      originId,
      from: this.full,
      to: target,
      encrypted,
    });
    return { stanza, originId, encrypted };
  }

  /** Decrypts our key of a delivered `<encrypted>` and returns the envelope's content. */
  async decrypt(sender: BareJid, e: Encrypted): Promise<ContentElement[]> {
    const key = e.keyGroups
      .find((g) => g.jid === this.jid)
      ?.keys.find((k) => k.rid === this.device.deviceId);
    if (key === undefined) throw new Error("no key for us");
    const plaintext = await this.device.sessions.decrypt(
      { senderJid: sender, senderDevice: e.sid, kex: key.kex, ciphertext: key.ciphertext },
      async (p) => p,
    );
    return decodeEnvelope(plaintext).content;
  }
}

export const text = (body: string): ContentElement[] => [{ kind: "body", text: body }];
