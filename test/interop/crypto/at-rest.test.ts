import assert from "node:assert/strict";
import {
  KyberPreKeyRecord,
  PreKeyRecord,
  SenderKeyDistributionMessage,
  SignedPreKeyRecord,
} from "@signalapp/libsignal-client";
import type { Knex } from "knex";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { describeOnBackends, scratchTable } from "../../helpers/db.js";
import {
  TEST_VAULT_KEY,
  address,
  directoryBundle,
  makeCrypto,
  newDevice,
  utf8,
} from "./helpers.js";

const SECRET_BODY = "the plaintext nobody may read from a dump";

async function allTables(knex: Knex): Promise<string[]> {
  if ((knex.client as { dialect: string }).dialect === "sqlite3") {
    const rows = (await knex.raw(
      "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'",
    )) as { name: string }[];
    return rows.map((r) => r.name);
  }
  const result = (await knex.raw(
    "select table_name from information_schema.tables where table_schema = current_schema()",
  )) as { rows: { table_name: string }[] };
  return result.rows.map((r) => r.table_name);
}

/** Every cell of every table, as bytes (binary cells) or UTF-8 (everything else). */
async function dump(knex: Knex): Promise<Buffer[]> {
  const cells: Buffer[] = [];
  for (const table of await allTables(knex)) {
    for (const row of (await knex(table).select("*")) as Record<string, unknown>[]) {
      for (const value of Object.values(row)) {
        if (value === null || value === undefined) continue;
        cells.push(Buffer.isBuffer(value) ? value : Buffer.from(String(value), "utf8"));
      }
    }
  }
  return cells;
}

describeOnBackends("keys at rest", (get) => {
  it("no private key, session, sender key or envelope appears in any database row in the clear", async function () {
    const { knex } = get().db;
    const world = makeCrypto(knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    await alice.device.sessions.processBundle(bob.jid, directoryBundle(bob.bundle));
    const [key] = await alice.device.sessions.encryptForDevices(
      utf8(SECRET_BODY),
      [address(bob.jid, bob.device.deviceId)],
      { remember: { originId: "m1", conversationJid: bob.jid } },
    );
    assert.ok(key);
    await bob.device.sessions.decrypt(
      {
        senderJid: alice.jid,
        senderDevice: alice.device.deviceId,
        kex: true,
        ciphertext: key.ciphertext,
      },
      async () => undefined,
    );
    const group = "k3x9q2@g.wa.example";
    const dist = await alice.device.groups.distribution(group);
    await bob.device.groups.processDistribution(
      group,
      address(alice.jid, alice.device.deviceId),
      dist.skdm,
    );

    // What must stay secret, recovered with the vault key the test knows.
    const vault = KeyVault.fromKey(TEST_VAULT_KEY);
    const secrets: Buffer[] = [SECRET_BODY].map((s) => Buffer.from(s));
    for (const device of [alice.device, bob.device]) {
      secrets.push(Buffer.from(device.state.user.identityKeyPair.privateKey.serialize()));
      const owner = device.state.ownerId;
      for (const row of await knex("signal_prekeys")
        .where({ owner_id: owner })
        .whereNotNull("record_enc")) {
        const rec = PreKeyRecord.deserialize(
          vault.open(row.record_enc, ["signal_prekeys", owner, row.prekey_id]),
        );
        secrets.push(Buffer.from(rec.privateKey().serialize()));
      }
      for (const row of await knex("signal_signed_prekeys").where({ owner_id: owner })) {
        const rec = SignedPreKeyRecord.deserialize(
          vault.open(row.record_enc, ["signal_signed_prekeys", owner, row.prekey_id]),
        );
        secrets.push(Buffer.from(rec.privateKey().serialize()));
      }
      for (const row of await knex("signal_kyber_prekeys")
        .where({ owner_id: owner })
        .whereNotNull("record_enc")) {
        const rec = KyberPreKeyRecord.deserialize(
          vault.open(row.record_enc, ["signal_kyber_prekeys", owner, row.prekey_id]),
        );
        secrets.push(Buffer.from(rec.secretKey().serialize()).subarray(1, 33));
      }
      for (const peer of [alice.jid, bob.jid]) {
        const session = await device.state.loadSession(
          undefined,
          peer,
          peer === alice.jid ? alice.device.deviceId : bob.device.deviceId,
        );
        if (session === null) continue;
        const bytes = Buffer.from(session.serialize());
        // Windows of the record, except those inside identity public keys, which are public.
        const publicKeys = [alice.device.identityKey, bob.device.identityKey].map((k) =>
          Buffer.from(k),
        );
        for (let at = 0; at + 32 <= bytes.length; at += Math.floor(bytes.length / 16)) {
          const window = bytes.subarray(at, at + 32);
          if (!publicKeys.some((k) => k.includes(window))) secrets.push(window);
        }
      }
    }
    secrets.push(
      Buffer.from(SenderKeyDistributionMessage.deserialize(new Uint8Array(dist.skdm)).chainKey()),
    );
    assert.ok(secrets.length > 20);

    // The scan finds a secret that is stored in the clear (here planted on purpose).
    const planted = secrets[1]?.toString("hex") ?? "";
    const scratch = await scratchTable(knex);
    await knex(scratch).insert({ key: "planted", value: planted });
    assert.ok((await dump(knex)).some((c) => c.includes(Buffer.from(planted))));
    await knex(scratch).where({ key: "planted" }).delete();

    const cells = await dump(knex);
    assert.ok(
      cells.some((c) => c.includes(Buffer.from(bob.jid))),
      "the scan sees our rows",
    );
    for (const secret of secrets) {
      const forms = [
        secret,
        Buffer.from(secret.toString("hex")),
        Buffer.from(secret.toString("base64")),
      ];
      for (const cell of cells) {
        for (const form of forms) {
          assert.equal(cell.includes(form), false, `secret bytes found in the clear`);
        }
      }
    }
  });
});
