import { randomUUID } from "node:crypto";
import type { ContentElement } from "../../../src/interop/codec/content.js";
import {
  decodeEncrypted,
  encodeEncrypted,
  encodeRetryRequest,
  keyFor,
} from "../../../src/interop/codec/e2ee.js";
import {
  decodeEnvelope,
  encodeEnvelope,
  type Envelope,
} from "../../../src/interop/codec/envelope.js";
import { buildDelivery } from "../../../src/interop/codec/message-builders.js";
import { NS } from "../../../src/interop/codec/namespaces.js";
import { optionalChild } from "../../../src/interop/codec/read.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { SignalCrypto, type DeviceCrypto } from "../../../src/interop/crypto/signal-crypto.js";
import type { EncryptedKey } from "../../../src/interop/crypto/types.js";
import { toPublishedBundle, toRemoteBundle } from "../../../src/interop/provider/directory.js";
import type { BareJid, DeviceId, MessageId, StanzaId } from "../../../src/util/ids.js";
import { createTestDatabase, type TestDatabase } from "../../helpers/db.js";
import { newStanzaId, type FakeGatekeeper } from "./fake-gatekeeper.js";

let counter = 0;

export function uniquePhoneJid(): BareJid {
  counter++;
  const random = String(Math.floor(Math.random() * 1e6)).padStart(6, "0");
  return `49${String(counter % 1000).padStart(3, "0")}${random}@wa.example` as BareJid;
}

export interface GkUser {
  readonly jid: BareJid;
  readonly devices: Map<number, DeviceCrypto>;
}

export interface Delivery {
  readonly stanza: XmlElement;
  readonly originId: MessageId;
  readonly stanzaId: StanzaId;
}

/**
 * Gatekeeper users with real Signal state (their own SQLite database), publishing to the fake
 * gatekeeper's directory, so that tests exchange real ciphertexts with the bridge.
 */
export class GatekeeperUsers {
  private constructor(
    private readonly fake: FakeGatekeeper,
    private readonly db: TestDatabase,
    private readonly crypto: SignalCrypto,
  ) {}

  static async create(fake: FakeGatekeeper): Promise<GatekeeperUsers> {
    const db = await createTestDatabase("sqlite");
    const crypto = new SignalCrypto({
      knex: db.db.knex,
      vault: KeyVault.fromKey(Buffer.alloc(32, 9)),
    });
    return new GatekeeperUsers(fake, db, crypto);
  }

  async dispose(): Promise<void> {
    await this.db.dispose();
  }

  async addUser(deviceIds: readonly number[] = [1]): Promise<GkUser> {
    const user: GkUser = { jid: uniquePhoneJid(), devices: new Map() };
    for (const id of deviceIds) await this.addDevice(user, id, { publishList: false });
    this.publishList(user);
    return user;
  }

  async addDevice(user: GkUser, id: number, { publishList = true } = {}): Promise<DeviceCrypto> {
    const created = await this.crypto.createLocalIdentity(user.jid, {
      deviceId: id as DeviceId,
      oneTimePreKeys: 5,
    });
    user.devices.set(id, created.device);
    this.fake.directory.publishBundle(user.jid, toPublishedBundle(created.bundle, false));
    if (publishList) this.publishList(user);
    return created.device;
  }

  /** A reinstall with a new identity key (§11.2 `reset`): the user's only device starts over. */
  async resetIdentity(user: GkUser, id: number): Promise<void> {
    await this.crypto.deleteLocalUser(user.jid);
    user.devices.clear();
    await this.addDevice(user, id);
  }

  publishList(user: GkUser): void {
    this.fake.directory.publishDevices(user.jid, [...user.devices.keys()] as DeviceId[]);
  }

  /** An encrypted delivery from one of the user's devices to every device of `to` (§12.1, §15.5). */
  async encryptTo(
    user: GkUser,
    deviceId: number,
    to: BareJid,
    content: ContentElement[],
    options: {
      seq?: number;
      corrupt?: boolean;
      originId?: MessageId;
      /** The recipient named inside the envelope (default `to`): another one is discarded (§12.2). */
      envelopeTo?: BareJid;
    } = {},
  ): Promise<Delivery> {
    const device = this.device(user, deviceId);
    const originId = options.originId ?? (randomUUID() as MessageId);
    const envelope = encodeEnvelope({
      content,
      id: originId,
      time: new Date(),
      to: options.envelopeTo ?? to,
      from: user.jid,
    });
    const recipients = (this.fake.directory.list(to)?.devices ?? []).map((d) => ({
      jid: to,
      device: d,
    }));
    for (const missing of await device.sessions.devicesWithoutSession(recipients)) {
      const [bundle] = this.fake.directory.fetch(to, [missing.device]);
      if (bundle !== undefined) await device.sessions.processBundle(to, toRemoteBundle(bundle));
    }
    const keys = await device.sessions.encryptForDevices(
      new Uint8Array(Buffer.from(envelope)),
      recipients,
      {
        remember: { originId, conversationJid: to },
      },
    );
    const wire = keys.map((k) => ({
      rid: k.rid,
      kex: k.kex,
      ciphertext:
        options.corrupt === true ? new Uint8Array(k.ciphertext.length).fill(7) : k.ciphertext,
    }));
    return this.delivery(user, deviceId, to, originId, wire, undefined, options.seq);
  }

  /** The gatekeeper user's answer to the bridge's retry request (§12.5). */
  async answerRetry(
    user: GkUser,
    deviceId: number,
    requester: { jid: BareJid; device: DeviceId },
    originId: MessageId,
    count: number,
  ): Promise<Delivery> {
    const device = this.device(user, deviceId);
    const auth = await device.retries.authorize({
      originId,
      requester,
      count,
      windowMs: 86_400_000,
    });
    if (!auth.ok) throw new Error(`retry not authorised: ${auth.reason}`);
    await device.retries.prepareAnswer(requester);
    const [bundle] = this.fake.directory.fetch(requester.jid, [requester.device]);
    if (bundle === undefined) throw new Error("no bundle for the requester");
    await device.sessions.processBundle(requester.jid, toRemoteBundle(bundle));
    const key: EncryptedKey = await device.retries.encryptAnswer({
      originId,
      requester,
      count,
      envelope: auth.envelope,
    });
    return this.delivery(user, deviceId, requester.jid, originId, [key], count);
  }

  /** A retry request from one of the user's devices to a bridge device (§12.5), as delivered. */
  retryRequest(
    user: GkUser,
    deviceId: number,
    to: string,
    originId: MessageId,
    count: 1 | 2,
  ): Delivery {
    const stanzaId = newStanzaId();
    const own = randomUUID() as MessageId;
    const stanza = buildDelivery({
      id: own,
      type: "chat",
      from: `${user.jid}/${deviceId}`,
      to,
      payload: encodeRetryRequest({
        id: originId,
        count,
        registration: this.device(user, deviceId).registrationId,
        reason: "decrypt-failed",
        author: undefined,
      }),
      originId: own,
      stanzaId: { id: stanzaId, by: "wa.example" as BareJid },
      meta: { stamp: new Date(), seq: undefined },
    });
    return { stanza, originId: own, stanzaId };
  }

  /** Decrypts what the bridge sent to this device, returning the envelope. */
  async decrypt(user: GkUser, deviceId: number, stanza: XmlElement): Promise<Envelope> {
    const device = this.device(user, deviceId);
    const encryptedEl = optionalChild(stanza, "encrypted", NS.e2ee);
    if (encryptedEl === undefined) throw new Error("no <encrypted>");
    const encrypted = decodeEncrypted(encryptedEl);
    const key = keyFor(encrypted, user.jid, deviceId as DeviceId);
    if (key === undefined) throw new Error(`no key for ${user.jid}/${deviceId}`);
    const from = String(stanza.attrs.from).split("/")[0] as BareJid;
    const plain = await device.sessions.decrypt(
      { senderJid: from, senderDevice: encrypted.sid, kex: key.kex, ciphertext: key.ciphertext },
      async (p) => p,
    );
    return decodeEnvelope(plain);
  }

  private device(user: GkUser, deviceId: number): DeviceCrypto {
    const device = user.devices.get(deviceId);
    if (device === undefined) throw new Error(`${user.jid} has no device ${deviceId}`);
    return device;
  }

  private delivery(
    user: GkUser,
    deviceId: number,
    to: BareJid,
    originId: MessageId,
    keys: readonly { rid: DeviceId; kex: boolean; ciphertext: Uint8Array }[],
    retry: number | undefined,
    seq?: number,
  ): Delivery {
    const stanzaId = newStanzaId();
    const stanza = buildDelivery({
      id: originId,
      type: "chat",
      from: `${user.jid}/${deviceId}`,
      to,
      payload: encodeEncrypted({
        sid: deviceId as DeviceId,
        keyGroups: [
          {
            jid: to,
            keys: keys.map((k) => ({ rid: k.rid, kex: k.kex, ciphertext: k.ciphertext })),
          },
        ],
        group: undefined,
        retry,
      }),
      originId,
      stanzaId: { id: stanzaId, by: "wa.example" as BareJid },
      meta: { stamp: new Date(), seq: seq ?? 1 },
    });
    return { stanza, originId, stanzaId };
  }
}
