import type { Tx } from "../../db/sql.js";
import {
  CiphertextMessageType,
  ErrorCode,
  KEMPublicKey,
  LibSignalErrorBase,
  PreKeyBundle,
  PreKeySignalMessage,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SignalMessage,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from "@signalapp/libsignal-client";
import type { BareJid, DeviceId } from "../../util/ids.js";
import { describeError } from "../../util/errors.js";
import * as tables from "../store/index.js";
import { forgetDeviceList } from "./device-lists.js";
import type { DeviceState } from "./device-state.js";
import { mapDecryptError, isSessionNotFound, storeFailureOf } from "./error-map.js";
import {
  InvalidBundleError,
  InvalidMessageError,
  LegacyMessageError,
  NoSessionError,
  UntrustedIdentityError,
} from "./errors.js";
import { decodeBase64 } from "./base64.js";
import { operationStores } from "./stores.js";
import type { DeviceAddress, EncryptedKey, InboundKey, RemoteBundle } from "./types.js";
import { WriteBatch } from "./write-batch.js";

/** §11.1: a Kyber prekey is a Kyber1024 public key, type byte 0x08, 1569 bytes. */
const KYBER_PUBLIC_KEY_BYTES = 1569;
const KYBER_KEY_TYPE = 0x08;
/** §5.2: PreKeySignalMessages below version 4 (pre-PQXDH) are rejected. */
const MIN_MESSAGE_VERSION = 4;

interface EncryptOptions {
  /**
   * Runs in the transaction that saves the advanced sessions: the caller stores its outbox row
   * here, so that a crash cannot leave a ratchet advanced for a message that was never stored.
   * It must use `trx`, never the shared knex (SQLite has one connection, held by `trx`).
   */
  readonly onCommit?: (keys: readonly EncryptedKey[], trx: Tx) => Promise<void>;
  /** Keep the envelope for retry answers (§12.3 step 5, §12.5), in the same transaction. */
  readonly remember?: { readonly originId: string; readonly conversationJid: string };
  /** Clock for session expiry (defaults to the context clock). */
  readonly now?: Date;
}

/**
 * The 1:1 Signal sessions of one local device. Every operation takes the lock of each contact it
 * touches, runs libsignal against stores whose writes are held in a WriteBatch, and commits them
 * in one transaction with the caller's own writes.
 */
export class SessionCipher {
  constructor(private readonly state: DeviceState) {}

  /**
   * Establishes a session from a fetched bundle (§12.3 step 3). An identity that differs from the
   * recorded one is accepted and recorded as a change (§12.4); in `hold` mode encryption to the
   * contact then fails with UntrustedIdentityError until the change is confirmed.
   */
  async processBundle(remoteJid: BareJid, bundle: RemoteBundle): Promise<void> {
    const state = this.state;
    const preKeyBundle = toPreKeyBundle(remoteJid, bundle);
    const remote = ProtocolAddress.new(remoteJid, bundle.deviceId);
    await this.locked([remoteJid], async () => {
      const batch = new WriteBatch();
      const stores = operationStores(state, batch, { acceptChangedIdentity: true });
      try {
        await processPreKeyBundle(
          preKeyBundle,
          remote,
          state.address,
          stores.session,
          stores.identity,
          new Date(state.ctx.now()),
        );
      } catch (err) {
        throw new InvalidBundleError(
          `bundle of ${remoteJid}/${bundle.deviceId} refused: ${describeError(err)}`,
          err,
        );
      }
      // The registration id of the bundle, for listed devices only: the device list itself
      // comes from the directory (§11.3, §11.7), never from a bundle.
      batch.addWrite(`remote-device\n${remoteJid}/${bundle.deviceId}`, (tx) =>
        tables.remoteDevices.setRegistrationId(
          tx,
          remoteJid,
          bundle.deviceId,
          bundle.registrationId,
        ),
      );
      forgetDeviceList(state.ctx.knex, remoteJid);
      try {
        await batch.commit(state.ctx.knex);
      } finally {
        forgetDeviceList(state.ctx.knex, remoteJid);
      }
    });
  }

  /** Devices among `recipients` that need a bundle before the next send (§12.3 step 3). */
  async devicesWithoutSession(recipients: readonly DeviceAddress[]): Promise<DeviceAddress[]> {
    const now = new Date(this.state.ctx.now());
    return this.locked(
      recipients.map((r) => r.jid),
      async () => {
        const missing: DeviceAddress[] = [];
        for (const r of recipients) {
          const session = await this.state.loadSession(undefined, r.jid, r.device);
          if (session === null || !session.hasCurrentState(now)) missing.push(r);
        }
        return missing;
      },
    );
  }

  /**
   * Encrypts the envelope separately for each recipient device (§12.3 step 4). Throws
   * NoSessionError (naming every such device) before encrypting anything if a device has no
   * usable session, and UntrustedIdentityError for a held identity change.
   */
  async encryptForDevices(
    envelope: Uint8Array,
    recipients: readonly DeviceAddress[],
    options: EncryptOptions = {},
  ): Promise<EncryptedKey[]> {
    const state = this.state;
    const now = options.now ?? new Date(state.ctx.now());
    const plaintext = toArrayBufferView(envelope);
    return this.locked(
      recipients.map((r) => r.jid),
      async () => {
        const batch = new WriteBatch();
        const stores = operationStores(state, batch);
        await this.refuseHeldIdentities(batch, recipients);
        const missing: DeviceAddress[] = [];
        for (const r of recipients) {
          const session = await state.loadSession(batch, r.jid, r.device);
          if (session === null || !session.hasCurrentState(now)) missing.push(r);
        }
        if (missing.length > 0) {
          throw new NoSessionError(missing, `no session with ${describeDevices(missing)}`);
        }
        const keys: EncryptedKey[] = [];
        for (const r of recipients) {
          const address = ProtocolAddress.new(r.jid, r.device);
          try {
            const message = await signalEncrypt(
              plaintext,
              address,
              state.address,
              stores.session,
              stores.identity,
              now,
            );
            keys.push({
              jid: r.jid,
              rid: r.device,
              kex: message.type() === CiphertextMessageType.PreKey,
              ciphertext: message.serialize(),
            });
          } catch (err) {
            throw storeFailureOf(batch) ?? this.mapEncryptError(err, r);
          }
        }
        const { remember, onCommit } = options;
        await batch.commit(
          state.ctx.knex,
          remember === undefined && onCommit === undefined
            ? undefined
            : async (trx) => {
                if (remember !== undefined) {
                  await rememberEnvelope(trx, state, remember, plaintext, recipients);
                }
                if (onCommit !== undefined) await onCommit(keys, trx);
              },
        );
        return keys;
      },
    );
  }

  /**
   * Decrypts one `<key>` (§12.4 step 3) and hands the plaintext to `onPlaintext`, which stores the
   * message and records de-duplication with `trx`. The advanced session and everything
   * `onPlaintext` wrote commit together; if either fails nothing is kept, so the same ciphertext
   * can be decrypted again later. `onPlaintext` must use `trx`, never the shared knex.
   */
  async decrypt<T>(
    inbound: InboundKey,
    onPlaintext: (plaintext: Uint8Array, trx: Tx) => Promise<T>,
  ): Promise<T> {
    const state = this.state;
    const sender = ProtocolAddress.new(inbound.senderJid, inbound.senderDevice);
    const bytes = toArrayBufferView(inbound.ciphertext);
    return this.locked([inbound.senderJid], async () => {
      const preKeys = new PreKeyGate(state);
      try {
        return await this.decryptLocked(inbound, sender, bytes, preKeys, onPlaintext);
      } finally {
        preKeys.leave();
      }
    });
  }

  private async decryptLocked<T>(
    inbound: InboundKey,
    sender: ProtocolAddress,
    bytes: Uint8Array<ArrayBuffer>,
    preKeys: PreKeyGate,
    onPlaintext: (plaintext: Uint8Array, trx: Tx) => Promise<T>,
  ): Promise<T> {
    const state = this.state;
    const batch = new WriteBatch();
    const stores = operationStores(state, batch, { beforePreKeyUse: preKeys.enter });
    let plaintext: Uint8Array;
    try {
      if (inbound.kex) {
        // The high nibble of the first byte is the message version; libsignal would report an
        // old one as a generic parse failure, §5.2 wants it named.
        const version = (bytes[0] ?? 0xff) >> 4;
        if (version < MIN_MESSAGE_VERSION) {
          throw new LegacyMessageError(
            version,
            `PreKeySignalMessage version ${version} from ${sender.toString()} is below 4`,
          );
        }
        const message = deserialize(() => PreKeySignalMessage.deserialize(bytes));
        plaintext = await signalDecryptPreKey(
          message,
          sender,
          state.address,
          stores.session,
          stores.identity,
          stores.preKey,
          stores.signedPreKey,
          stores.kyberPreKey,
        );
      } else {
        const message = deserialize(() => SignalMessage.deserialize(bytes));
        plaintext = await signalDecrypt(
          message,
          sender,
          state.address,
          stores.session,
          stores.identity,
        );
      }
    } catch (err) {
      throw mapDecryptError(err, batch, { jid: inbound.senderJid, device: inbound.senderDevice });
    }
    return batch.commit(state.ctx.knex, (trx) => onPlaintext(plaintext, trx));
  }

  async hasSession(remote: DeviceAddress): Promise<boolean> {
    return this.locked([remote.jid], async () => {
      const session = await this.state.loadSession(undefined, remote.jid, remote.device);
      return session !== null && session.hasCurrentState(new Date(this.state.ctx.now()));
    });
  }

  /** Deletes sessions with a contact's devices (all of them when `devices` is omitted). */
  async deleteSessions(remoteJid: BareJid, devices?: readonly DeviceId[]): Promise<void> {
    const state = this.state;
    await this.locked([remoteJid], async () => {
      await tables.sessions.deleteOfContact(state.ctx.knex, state.ownerId, remoteJid, devices);
      state.forgetSessions(remoteJid, devices);
    });
  }

  /** Archives the current session (§12.5 answering): the next send needs a fresh bundle. */
  async archiveSession(remote: DeviceAddress): Promise<void> {
    const state = this.state;
    await this.locked([remote.jid], async () => {
      const batch = new WriteBatch();
      const current = await state.loadSession(batch, remote.jid, remote.device);
      if (current === null) return;
      // A copy: the cached record must not change before the commit.
      const copy = SessionRecord.deserialize(current.serialize());
      copy.archiveCurrentState();
      state.stageSession(batch, remote.jid, remote.device, copy);
      await batch.commit(state.ctx.knex);
    });
  }

  private locked<T>(remoteJids: readonly string[], fn: () => Promise<T>): Promise<T> {
    const user = this.state.user;
    return user.ctx.mutex.run(
      remoteJids.map((jid) => user.lockKey(jid)),
      fn,
    );
  }

  private async refuseHeldIdentities(
    batch: WriteBatch,
    recipients: readonly DeviceAddress[],
  ): Promise<void> {
    if (this.state.ctx.policy !== "hold") return;
    for (const jid of new Set(recipients.map((r) => r.jid))) {
      const identity = await this.state.user.loadIdentity(batch, jid);
      if (identity !== null && !identity.confirmed) {
        throw new UntrustedIdentityError(
          jid,
          identity.previousKey,
          identity.key,
          `the security code of ${jid} changed; sending waits until the change is confirmed`,
        );
      }
    }
  }

  private mapEncryptError(err: unknown, r: DeviceAddress): Error {
    if (err instanceof LibSignalErrorBase && err.code === ErrorCode.UntrustedIdentity) {
      // The session was built on an identity that is no longer the recorded one.
      return new NoSessionError(
        [r],
        `the session with ${r.jid}/${r.device} uses a replaced identity; fetch a fresh bundle`,
        err,
      );
    }
    if (isSessionNotFound(err)) {
      return new NoSessionError([r], `no session with ${r.jid}/${r.device}`, err);
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * The prekey lock of one local device, taken by a decrypt only once libsignal reads a one-time or
 * Kyber prekey (a PreKeySignalMessage that starts a new session; one on an existing session reads
 * none) and held until the decrypt committed. The contact's lock does not cover them: they are
 * shared by all of the device's contacts, and two first messages over the same one-time prekey
 * (a directory that handed it out twice, a replay under another sender) decrypted at the same
 * time would both read it before either committed its consumption, and both be accepted.
 */
class PreKeyGate {
  private entered: Promise<void> | undefined;
  private release: (() => void) | undefined;

  constructor(private readonly state: DeviceState) {}

  /** Takes the lock (once); libsignal's store callbacks await it. */
  readonly enter = (): Promise<void> => {
    if (this.entered === undefined) {
      const done = new Promise<void>((resolve) => {
        this.release = resolve;
      });
      this.entered = new Promise<void>((entered) => {
        void this.state.ctx.mutex.run([preKeyLockKey(this.state)], () => {
          entered();
          return done;
        });
      });
    }
    return this.entered;
  };

  /** Releases the lock if it was taken (or, if still awaited, as soon as it is). */
  leave(): void {
    this.release?.();
  }
}

/** Bare JIDs never contain NUL, so this key is no contact lock key (UserState.lockKey). */
const preKeyLockKey = (state: DeviceState): string => `\u0000prekeys\n${state.ownerId}`;

function toPreKeyBundle(remoteJid: string, bundle: RemoteBundle): PreKeyBundle {
  const where = `${remoteJid}/${bundle.deviceId}`;
  try {
    const kyber = decodeBase64(bundle.kyberPreKey.publicKey);
    if (kyber.length !== KYBER_PUBLIC_KEY_BYTES || kyber[0] !== KYBER_KEY_TYPE) {
      throw new Error(`Kyber prekey is not a Kyber1024 key (${kyber.length} bytes)`);
    }
    return PreKeyBundle.new(
      bundle.registrationId,
      bundle.deviceId,
      bundle.preKey?.id ?? null,
      bundle.preKey === null ? null : PublicKey.deserialize(decodeBase64(bundle.preKey.publicKey)),
      bundle.signedPreKey.id,
      PublicKey.deserialize(decodeBase64(bundle.signedPreKey.publicKey)),
      decodeBase64(bundle.signedPreKey.signature),
      PublicKey.deserialize(decodeBase64(bundle.identityKey)),
      bundle.kyberPreKey.id,
      KEMPublicKey.deserialize(kyber),
      decodeBase64(bundle.kyberPreKey.signature),
    );
  } catch (err) {
    throw new InvalidBundleError(`malformed bundle of ${where}: ${describeError(err)}`, err);
  }
}

export async function rememberEnvelope(
  tx: Tx,
  state: DeviceState,
  remember: { originId: string; conversationJid: string },
  envelope: Uint8Array,
  recipients: readonly DeviceAddress[],
): Promise<void> {
  const byJid = new Map<string, number[]>();
  for (const r of recipients) byJid.set(r.jid, [...(byJid.get(r.jid) ?? []), r.device]);
  const ref = ["signal_sent_envelopes", state.ownerId, remember.originId] as const;
  // The first send of an origin-id (every message): one insert, no select before it (#15).
  const inserted = await tables.sentEnvelopes.insertIfNew(tx, state.ownerId, remember.originId, {
    conversationJid: remember.conversationJid,
    envelopeEnc: state.ctx.vault.seal(envelope, ref),
    recipients: encodeRecipients(byJid),
    sentAt: state.ctx.now(),
  });
  if (inserted) return;
  const existing = await tables.sentEnvelopes.recipients(tx, state.ownerId, remember.originId);
  if (existing === undefined) return;
  // A stale-device-list re-send (§12.3): same envelope, more devices; the send time stays.
  for (const entry of JSON.parse(existing) as { jid: string; devices: number[] }[]) {
    const merged = new Set([...(byJid.get(entry.jid) ?? []), ...entry.devices]);
    byJid.set(entry.jid, [...merged]);
  }
  await tables.sentEnvelopes.setRecipients(
    tx,
    state.ownerId,
    remember.originId,
    encodeRecipients(byJid),
  );
}

function encodeRecipients(byJid: ReadonlyMap<string, readonly number[]>): string {
  return JSON.stringify([...byJid].map(([jid, devices]) => ({ jid, devices })));
}

function deserialize<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new InvalidMessageError(`malformed Signal message: ${describeError(err)}`, err);
  }
}

function describeDevices(devices: readonly DeviceAddress[]): string {
  return devices.map((d) => `${d.jid}/${d.device}`).join(", ");
}

/** libsignal's typings want ArrayBuffer-backed views; copy only when given something else. */
export function toArrayBufferView(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
}
