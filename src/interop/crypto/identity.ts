import { Fingerprint, PublicKey } from "@signalapp/libsignal-client";
import type { BareJid } from "../../util/ids.js";
import * as tables from "../store/index.js";
import type { IdentityRecord, UserState } from "./device-state.js";
import type { IdentityStatus, SafetyNumber } from "./types.js";
import { WriteBatch } from "./write-batch.js";

/** §12.6: Fingerprint.new(5200, 2, ...). */
const FINGERPRINT_ITERATIONS = 5200;
const FINGERPRINT_VERSION = 2;

/**
 * Contact identities of a local user: safety numbers (§12.6), the verified mark, and the
 * confirmation that releases sending after a change in `hold` mode. Changes go through a
 * WriteBatch under the contact's lock, like libsignal's own identity writes.
 *
 * The verified mark is kept here and nowhere else (`signal_identities.verified_at`; the core's
 * copy went with migration 0017, docs/core.md "Verified contacts"): it belongs to one identity
 * key, is set only while that key is the one compared, and is cleared by the very write that
 * records a new key (stores.ts saveIdentity), so no event has to reach anyone to reset it.
 */
export class IdentityBook {
  constructor(private readonly user: UserState) {}

  /** The safety number with a contact, or null before any identity of theirs is known. */
  async safetyNumber(remoteJid: BareJid): Promise<SafetyNumber | null> {
    const record = await this.locked(remoteJid, () => this.user.loadIdentity(undefined, remoteJid));
    if (record === null) return null;
    const fingerprint = this.fingerprint(remoteJid, record.key);
    const digits = fingerprint.displayableFingerprint().toString();
    return {
      digits,
      groups: digits.match(/\d{5}/g) ?? [],
      scannable: fingerprint.scannableFingerprint().toBuffer(),
    };
  }

  async status(remoteJid: BareJid): Promise<IdentityStatus | null> {
    const record = await this.locked(remoteJid, () => this.user.loadIdentity(undefined, remoteJid));
    if (record === null) return null;
    return {
      identityKey: new Uint8Array(record.key),
      firstSeenAt: record.firstSeenAt,
      changedAt: record.changedAt,
      verifiedAt: record.verifiedAt,
      sendingAllowed: record.confirmed || this.user.ctx.policy === "warn",
    };
  }

  /**
   * Marks the contact verified, if its identity is still `expectedKey` (the key whose safety
   * number the user compared). Returns false when the identity is unknown or has changed since.
   */
  async markVerified(remoteJid: BareJid, expectedKey: Uint8Array): Promise<boolean> {
    return this.update(remoteJid, (record) =>
      record.key.equals(expectedKey)
        ? { ...record, verifiedAt: this.user.ctx.now(), confirmed: true }
        : null,
    );
  }

  /**
   * Marks the contact verified if `digits` is the safety number of their identity at the moment of
   * the write (checked in the same update that sets the mark). False when unknown or changed.
   */
  async markVerifiedIfShown(remoteJid: BareJid, digits: string): Promise<boolean> {
    return this.update(remoteJid, (record) =>
      this.fingerprint(remoteJid, record.key).displayableFingerprint().toString() === digits
        ? { ...record, verifiedAt: this.user.ctx.now(), confirmed: true }
        : null,
    );
  }

  private fingerprint(remoteJid: BareJid, key: Uint8Array): Fingerprint {
    return Fingerprint.new(
      FINGERPRINT_ITERATIONS,
      FINGERPRINT_VERSION,
      utf8(this.user.jid),
      this.user.identityKeyPair.publicKey,
      utf8(remoteJid),
      PublicKey.deserialize(new Uint8Array(key)),
    );
  }

  /** The contacts marked verified (their identity unchanged since): one read, for listings. */
  async verifiedContacts(): Promise<BareJid[]> {
    return tables.identities.verifiedOf(this.user.ctx.knex, this.user.jid);
  }

  async clearVerified(remoteJid: BareJid): Promise<boolean> {
    return this.update(remoteJid, (record) => ({ ...record, verifiedAt: null }));
  }

  /** The user acknowledged a changed identity: sending resumes in `hold` mode. */
  async confirm(remoteJid: BareJid): Promise<boolean> {
    return this.update(remoteJid, (record) => ({ ...record, confirmed: true }));
  }

  private async update(
    remoteJid: BareJid,
    change: (record: IdentityRecord) => IdentityRecord | null,
  ): Promise<boolean> {
    return this.locked(remoteJid, async () => {
      const batch = new WriteBatch();
      const record = await this.user.loadIdentity(batch, remoteJid);
      if (record === null) return false;
      const next = change(record);
      if (next === null) return false;
      this.user.stageIdentity(batch, remoteJid, next);
      await batch.commit(this.user.ctx.knex);
      return true;
    });
  }

  private locked<T>(remoteJid: string, fn: () => Promise<T>): Promise<T> {
    return this.user.ctx.mutex.run([this.user.lockKey(remoteJid)], fn);
  }
}

function utf8(text: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(text, "utf8"));
}
