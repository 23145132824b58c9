import type { Tx } from "../../db/sql.js";
import { randomUUID } from "node:crypto";
import {
  ErrorCode,
  LibSignalErrorBase,
  ProtocolAddress,
  SenderKeyDistributionMessage,
  SenderKeyMessage,
  groupDecrypt,
  groupEncrypt,
  processSenderKeyDistributionMessage,
} from "@signalapp/libsignal-client";
import { describeError } from "../../util/errors.js";
import * as tables from "../store/index.js";
import type { DeviceState } from "./device-state.js";
import { toArrayBufferView } from "./session-cipher.js";
import {
  DuplicateMessageError,
  InvalidMessageError,
  NoSenderKeyError,
  SenderKeyGroupMismatchError,
} from "./errors.js";
import { operationStores } from "./stores.js";
import type { DeviceAddress } from "./types.js";
import { WriteBatch } from "./write-batch.js";

interface SenderKeyDistribution {
  readonly distributionId: string;
  /** Serialized SKDM, the content of `<sender-key>` (§13.3). */
  readonly skdm: Uint8Array;
}

/**
 * Sender keys of one local device (§13.3, §17.4, §17.5): its own key per group, and the keys of
 * other members' devices, each bound to the group it was distributed for.
 */
export class GroupCipher {
  constructor(private readonly state: DeviceState) {}

  /** The SKDM of this device's current sender key for the group, creating the key if needed. */
  async distribution(groupJid: string): Promise<SenderKeyDistribution> {
    return this.ownLocked(async () => {
      const current = await this.currentDistributionId(groupJid);
      return this.createDistribution(groupJid, current ?? randomUUID(), current === null);
    });
  }

  /** A new sender key for the group (§17.5: after removals and identity changes). */
  async rotate(groupJid: string): Promise<SenderKeyDistribution> {
    return this.ownLocked(() => this.createDistribution(groupJid, randomUUID(), true));
  }

  /** `groupEncrypt` of an envelope with this device's current key; `onCommit` as for 1:1. */
  async encrypt(
    groupJid: string,
    envelope: Uint8Array,
    onCommit?: (trx: Tx) => Promise<void>,
  ): Promise<Uint8Array> {
    const state = this.state;
    return this.ownLocked(async () => {
      const distributionId = await this.currentDistributionId(groupJid);
      if (distributionId === null) {
        throw new NoSenderKeyError(
          `no sender key of our own for ${groupJid}; distribute one first`,
        );
      }
      const batch = new WriteBatch();
      const stores = operationStores(state, batch);
      const message = await groupEncrypt(
        state.address,
        distributionId,
        stores.senderKey,
        toArrayBufferView(envelope),
      );
      await batch.commit(state.ctx.knex, onCommit);
      return message.serialize();
    });
  }

  /**
   * Processes a received SKDM for the group (§13.3). A distribution id already bound to another
   * group is refused.
   */
  async processDistribution(
    groupJid: string,
    sender: DeviceAddress,
    skdm: Uint8Array,
    onCommit?: (trx: Tx) => Promise<void>,
  ): Promise<void> {
    const state = this.state;
    let message: SenderKeyDistributionMessage;
    try {
      message = SenderKeyDistributionMessage.deserialize(toArrayBufferView(skdm));
    } catch (err) {
      throw new InvalidMessageError(
        `malformed SKDM from ${sender.jid}: ${describeError(err)}`,
        err,
      );
    }
    const distributionId = message.distributionId();
    // The binding of a distribution id to one group is shared by every member's key of that id:
    // checked and written under the id's lock too, not only the member's (two members' SKDMs
    // under one id, for two groups, processed at the same time were both bound).
    const keys = [this.state.user.lockKey(sender.jid), this.distributionLockKey(distributionId)];
    await this.state.ctx.mutex.run(keys, async () => {
      await this.checkBinding(groupJid, distributionId);
      const batch = new WriteBatch();
      const stores = operationStores(state, batch);
      const address = ProtocolAddress.new(sender.jid, sender.device);
      await processSenderKeyDistributionMessage(address, message, stores.senderKey);
      batch.addWrite(`sender-key-group\n${distributionId}`, (tx) =>
        tables.senderKeys.bindUnbound(tx, state.ownerId, distributionId, groupJid),
      );
      await batch.commit(state.ctx.knex, onCommit);
    });
  }

  /** `groupDecrypt` of a `<group>` payload; commit semantics as for 1:1 decrypt. */
  async decrypt<T>(
    groupJid: string,
    sender: DeviceAddress,
    ciphertext: Uint8Array,
    onPlaintext: (plaintext: Uint8Array, trx: Tx) => Promise<T>,
  ): Promise<T> {
    const state = this.state;
    const bytes = toArrayBufferView(ciphertext);
    let distributionId: string;
    try {
      distributionId = SenderKeyMessage.deserialize(bytes).distributionId();
    } catch (err) {
      throw new InvalidMessageError(`malformed group message: ${describeError(err)}`, err);
    }
    return this.locked(sender.jid, async () => {
      const known = await tables.senderKeys.groupOf(state.ctx.knex, {
        ownerId: state.ownerId,
        senderJid: sender.jid,
        senderDevice: sender.device,
        distributionId,
      });
      if (known === undefined) {
        throw new NoSenderKeyError(
          `no sender key ${distributionId} of ${sender.jid}/${sender.device} for ${groupJid}`,
        );
      }
      await this.checkBinding(groupJid, distributionId);
      const batch = new WriteBatch();
      const stores = operationStores(state, batch);
      let plaintext: Uint8Array;
      try {
        plaintext = await groupDecrypt(
          ProtocolAddress.new(sender.jid, sender.device),
          stores.senderKey,
          bytes,
        );
      } catch (err) {
        if (err instanceof LibSignalErrorBase && err.code === ErrorCode.DuplicatedMessage) {
          throw new DuplicateMessageError(`group message from ${sender.jid} already seen`, err);
        }
        throw new InvalidMessageError(
          `cannot decrypt the group message from ${sender.jid}/${sender.device}: ${describeError(err)}`,
          err,
        );
      }
      return batch.commit(state.ctx.knex, (trx) => onPlaintext(plaintext, trx));
    });
  }

  private async createDistribution(
    groupJid: string,
    distributionId: string,
    persist: boolean,
  ): Promise<SenderKeyDistribution> {
    const state = this.state;
    const batch = new WriteBatch();
    const stores = operationStores(state, batch);
    const message = await SenderKeyDistributionMessage.create(
      state.address,
      distributionId,
      stores.senderKey,
    );
    if (persist) {
      const now = state.ctx.now();
      batch.addWrite(`own-sender-key\n${groupJid}`, (tx) =>
        tables.ownSenderKeys.set(tx, state.ownerId, groupJid, distributionId, now),
      );
      batch.addWrite(`own-sender-key-group\n${distributionId}`, (tx) =>
        tables.senderKeys.bind(tx, state.ownerId, distributionId, groupJid),
      );
    }
    await batch.commit(state.ctx.knex);
    return { distributionId, skdm: message.serialize() };
  }

  private async currentDistributionId(groupJid: string): Promise<string | null> {
    const current = await tables.ownSenderKeys.current(
      this.state.ctx.knex,
      this.state.ownerId,
      groupJid,
    );
    return current ?? null;
  }

  private async checkBinding(groupJid: string, distributionId: string): Promise<void> {
    const other = await tables.senderKeys.boundElsewhere(
      this.state.ctx.knex,
      this.state.ownerId,
      distributionId,
      groupJid,
    );
    if (other !== undefined) {
      throw new SenderKeyGroupMismatchError(
        `sender key ${distributionId} belongs to ${other}, not ${groupJid}`,
      );
    }
  }

  private ownLocked<T>(fn: () => Promise<T>): Promise<T> {
    return this.locked(this.state.user.jid, fn);
  }

  /** Bare JIDs never contain NUL, so this key is no contact lock key (UserState.lockKey). */
  private distributionLockKey(distributionId: string): string {
    return `\u0000distribution\n${this.state.ownerId}\n${distributionId}`;
  }

  private locked<T>(jid: string, fn: () => Promise<T>): Promise<T> {
    return this.state.ctx.mutex.run([this.state.user.lockKey(jid)], fn);
  }
}
