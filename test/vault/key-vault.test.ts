import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  VaultKeyMismatchError,
  VaultKeyMissingError,
  VaultRecordError,
} from "../../src/vault/errors.js";
import { KeyVault, openKeyVault } from "../../src/vault/key-vault.js";
import { describeOnBackends } from "../helpers/db.js";

describe("key vault", function () {
  let dir = "";
  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "mwi-vault-"));
  });
  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("a sealed value opens only for the row it was sealed for", function () {
    const vault = KeyVault.fromKey(KeyVault.generateKey());
    const sealed = vault.seal(Buffer.from("session bytes"), ["signal_sessions", 1, "a@x", 1]);
    assert.equal(sealed[0], 1, "version byte");
    assert.equal(sealed.length, 1 + 12 + 16 + "session bytes".length);
    assert.equal(vault.open(sealed, ["signal_sessions", 1, "a@x", 1]).toString(), "session bytes");
    assert.throws(() => vault.open(sealed, ["signal_sessions", 1, "a@x", 2]), VaultRecordError);
    assert.throws(() => vault.open(sealed, ["signal_sessions", 2, "a@x", 1]), VaultRecordError);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    assert.throws(() => vault.open(tampered, ["signal_sessions", 1, "a@x", 1]), VaultRecordError);
    const again = vault.seal(Buffer.from("session bytes"), ["signal_sessions", 1, "a@x", 1]);
    assert.notDeepEqual(again, sealed, "a fresh nonce per value");
  });

  it("every sealed value has its own nonce, also when more are sealed than one draw of randomness holds", function () {
    const vault = KeyVault.fromKey(KeyVault.generateKey());
    const row = ["signal_sessions", 1, "a@x", 1] as const;
    const nonces = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const plaintext = Buffer.from(`record ${i}`);
      const sealed = vault.seal(plaintext, row);
      nonces.add(sealed.subarray(1, 13).toString("hex"));
      assert.deepEqual(vault.open(sealed, row), plaintext);
    }
    assert.equal(nonces.size, 1000);
    assert.equal(vault.open(vault.seal(new Uint8Array(0), row), row).length, 0, "an empty value");
  });

  it("a key file may hold raw bytes, hex or base64, and all give the same key", async function () {
    const key = KeyVault.generateKey();
    const files = {
      raw: key,
      hex: Buffer.from(`${key.toString("hex")}\n`),
      b64: Buffer.from(`  ${key.toString("base64")}\n`),
    };
    const sealed = KeyVault.fromKey(key).seal(Buffer.from("x"), ["t", 1]);
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(dir, `key.${name}`);
      await writeFile(file, content);
      const vault = await KeyVault.load({ keyFile: file });
      assert.equal(vault.open(sealed, ["t", 1]).toString(), "x", name);
    }
    const fromEnv = await KeyVault.load({ env: { MWI_SIGNAL_STORE_KEY: key.toString("hex") } });
    assert.equal(fromEnv.open(sealed, ["t", 1]).toString(), "x");
  });

  it("a missing or malformed key is refused with a one-line reason", async function () {
    await assert.rejects(KeyVault.load({ env: {} }), (err: unknown) => {
      assert.ok(err instanceof VaultKeyMissingError);
      assert.equal(err.code, "vault-key-missing");
      assert.match(err.message, /MWI_SIGNAL_STORE_KEY/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    await assert.rejects(
      KeyVault.load({ keyFile: path.join(dir, "absent.key") }),
      (err: unknown) => err instanceof VaultKeyMissingError && /absent\.key/.test(err.message),
    );
    const short = path.join(dir, "short.key");
    await writeFile(short, "abcdef\n");
    await assert.rejects(KeyVault.load({ keyFile: short }), VaultKeyMissingError);
  });
});

describeOnBackends("key vault check value", (get) => {
  it("the first key is recorded, the same key opens again, a different key is refused clearly", async function () {
    const { knex } = get().db;
    const key = KeyVault.generateKey();
    const env = { MWI_SIGNAL_STORE_KEY: key.toString("base64") };
    await openKeyVault(knex, { env });
    await openKeyVault(knex, { env });
    const other = { MWI_SIGNAL_STORE_KEY: KeyVault.generateKey().toString("hex") };
    await assert.rejects(openKeyVault(knex, { env: other }), (err: unknown) => {
      assert.ok(err instanceof VaultKeyMismatchError);
      assert.equal(err.code, "vault-key-wrong");
      assert.match(err.message, /does not match/);
      return true;
    });
  });
});
