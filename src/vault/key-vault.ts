import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Knex } from "knex";
import { describeError } from "../util/errors.js";
import { VaultKeyMismatchError, VaultKeyMissingError, VaultRecordError } from "./errors.js";

/**
 * Keys at rest. Every serialized libsignal record holds private material, so each one is sealed
 * with AES-256-GCM before it reaches the database:
 *
 *   version byte (0x01) || 12-byte random nonce || 16-byte tag || ciphertext
 *
 * The associated data names the row (table and primary key), so that a sealed value copied into
 * another row fails to open instead of silently becoming another user's session.
 *
 * The 32-byte key comes from a key file or an environment variable. A key file holds either exactly
 * 32 raw bytes, or text (surrounding whitespace ignored) that is 64 hex digits or the base64 of 32
 * bytes; the environment variable holds such text. The lengths cannot collide (32 vs 64 vs 44), so
 * the format needs no flag. When both are configured the file wins.
 */
const VAULT_FORMAT_VERSION = 0x01;
const DEFAULT_VAULT_KEY_ENV = "MWI_SIGNAL_STORE_KEY";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES + TAG_BYTES;
const CHECK_KEY = "vault_check";
const CHECK_PLAINTEXT = Buffer.from("matrix-whatsapp-interop key vault check v1", "utf8");

interface VaultKeySource {
  /** Path of the key file. */
  keyFile?: string;
  /** Name of the environment variable holding the key; defaults to MWI_SIGNAL_STORE_KEY. */
  envVar?: string;
  /** The environment to read; defaults to process.env (tests pass their own). */
  env?: Record<string, string | undefined>;
}

/** Row identity bound into a sealed value: the table and the primary-key values, in order. */
type RowRef = readonly [table: string, ...key: (string | number)[]];

export class KeyVault {
  /** A KeyObject, prepared once: importing a raw key on every seal cost more than the AES. */
  private readonly key: KeyObject;
  private readonly nonces = new NoncePool();

  private constructor(key: Uint8Array) {
    this.key = createSecretKey(Buffer.from(key));
  }

  /** A fresh random key, e.g. to write a new key file (store it as hex or raw bytes). */
  static generateKey(): Buffer {
    return randomBytes(32);
  }

  static fromKey(key: Uint8Array): KeyVault {
    if (key.length !== 32) {
      throw new VaultKeyMissingError(`the key vault key must be 32 bytes, got ${key.length}`);
    }
    return new KeyVault(key);
  }

  /** Reads the key from the configured source; a missing or malformed key is VaultKeyMissingError. */
  static async load(source: VaultKeySource): Promise<KeyVault> {
    if (source.keyFile !== undefined) {
      let raw: Buffer;
      try {
        raw = await readFile(source.keyFile);
      } catch (err) {
        throw new VaultKeyMissingError(
          `cannot read the key vault key file ${source.keyFile}: ${describeError(err)}`,
          err,
        );
      }
      return new KeyVault(parseKey(raw, `key file ${source.keyFile}`));
    }
    const name = source.envVar ?? DEFAULT_VAULT_KEY_ENV;
    const value = (source.env ?? process.env)[name];
    if (value === undefined || value.trim() === "") {
      throw new VaultKeyMissingError(
        `no key vault key: set a key file or the environment variable ${name} (32 bytes as 64 hex digits or base64)`,
      );
    }
    return new KeyVault(parseKey(Buffer.from(value, "utf8"), `environment variable ${name}`));
  }

  /**
   * Checks the key against the database: the first use stores a sealed check value, later uses
   * must open it. A different key is refused here, before any record fails to open.
   */
  async verifyAgainst(knex: Knex): Promise<void> {
    const ref: RowRef = ["crypto_meta", CHECK_KEY];
    const row = (await knex("crypto_meta").where({ key: CHECK_KEY }).first()) as
      { value: Buffer } | undefined;
    if (row === undefined) {
      await knex("crypto_meta")
        .insert({ key: CHECK_KEY, value: this.seal(CHECK_PLAINTEXT, ref) })
        .onConflict("key")
        .ignore();
      return this.verifyAgainst(knex);
    }
    let opened: Buffer;
    try {
      opened = this.open(row.value, ref);
    } catch {
      throw new VaultKeyMismatchError(
        "the key vault key does not match the key this database's Signal keys were stored with; configure the original key",
      );
    }
    if (!opened.equals(CHECK_PLAINTEXT)) {
      throw new VaultKeyMismatchError("the key vault check value in crypto_meta is not ours");
    }
  }

  seal(plaintext: Uint8Array, row: RowRef): Buffer {
    const sealed = Buffer.allocUnsafe(HEADER_BYTES + plaintext.byteLength);
    sealed[0] = VAULT_FORMAT_VERSION;
    const nonce = this.nonces.next(sealed.subarray(1, 1 + NONCE_BYTES));
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    cipher.setAAD(associatedData(row));
    // GCM is a stream mode: update returns every ciphertext byte and final() none.
    cipher.update(plaintext).copy(sealed, HEADER_BYTES);
    cipher.final();
    cipher.getAuthTag().copy(sealed, 1 + NONCE_BYTES);
    return sealed;
  }

  open(sealed: Uint8Array, row: RowRef): Buffer<ArrayBuffer> {
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (buf.length < HEADER_BYTES || buf[0] !== VAULT_FORMAT_VERSION) {
      throw new VaultRecordError(`sealed value of ${describeRow(row)} has an unknown format`);
    }
    const nonce = buf.subarray(1, 1 + NONCE_BYTES);
    const tag = buf.subarray(1 + NONCE_BYTES, HEADER_BYTES);
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, nonce);
      decipher.setAAD(associatedData(row));
      decipher.setAuthTag(tag);
      const opened = decipher.update(buf.subarray(HEADER_BYTES));
      // Checks the tag; GCM yields no bytes here.
      decipher.final();
      return opened;
    } catch (err) {
      throw new VaultRecordError(`sealed value of ${describeRow(row)} does not authenticate`, err);
    }
  }
}

/** Opens the vault from its configured source and checks it against the database. */
export async function openKeyVault(knex: Knex, source: VaultKeySource): Promise<KeyVault> {
  const vault = await KeyVault.load(source);
  await vault.verifyAgainst(knex);
  return vault;
}

function parseKey(raw: Buffer, where: string): Buffer {
  if (raw.length === 32) return raw;
  const text = raw.toString("utf8").trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, "base64");
  throw new VaultKeyMissingError(
    `the key vault key in the ${where} is not 32 raw bytes, 64 hex digits or base64 of 32 bytes`,
  );
}

/**
 * Random nonces drawn from the CSPRNG a few hundred at a time: a `randomBytes` call per seal cost
 * as much as the AES of a session record (three seals per message, issue #15). Each nonce is
 * used once (the offset only moves forward), so they stay as random and unique as before (a
 * nonce is no secret: it is stored beside the ciphertext).
 */
class NoncePool {
  private pool = Buffer.alloc(0);
  private offset = 0;

  /** Writes the next nonce into `into` (NONCE_BYTES long) and returns it. */
  next(into: Buffer): Buffer {
    if (this.offset + NONCE_BYTES > this.pool.length) {
      this.pool = randomBytes(NONCE_BYTES * 256);
      this.offset = 0;
    }
    this.pool.copy(into, 0, this.offset, this.offset + NONCE_BYTES);
    this.offset += NONCE_BYTES;
    return into;
  }
}

function associatedData(row: RowRef): Buffer {
  // JSON keeps the parts unambiguous whatever characters a JID contains.
  return Buffer.from(JSON.stringify(row), "utf8");
}

function describeRow(row: RowRef): string {
  return `${row[0]} row (${row.slice(1).join(", ")})`;
}
