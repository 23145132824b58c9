import assert from "node:assert/strict";
import {
  DuplicateMessageError,
  NoSenderKeyError,
  SenderKeyGroupMismatchError,
} from "../../../src/interop/crypto/errors.js";
import {
  ProtocolAddress,
  SenderKeyDistributionMessage,
  SenderKeyRecord,
  SenderKeyStore,
} from "@signalapp/libsignal-client";
import { describeOnBackends } from "../../helpers/db.js";
import { address, ensureInboxTable, makeCrypto, newDevice, text, utf8 } from "./helpers.js";

/** A sender's own sender keys, in memory: to craft an SKDM under a chosen distribution id. */
class MemorySenderKeyStore extends SenderKeyStore {
  private readonly records = new Map<string, SenderKeyRecord>();

  override async saveSenderKey(
    sender: ProtocolAddress,
    distributionId: string,
    record: SenderKeyRecord,
  ): Promise<void> {
    this.records.set(`${sender.toString()}\n${distributionId}`, record);
  }

  override async getSenderKey(
    sender: ProtocolAddress,
    distributionId: string,
  ): Promise<SenderKeyRecord | null> {
    return this.records.get(`${sender.toString()}\n${distributionId}`) ?? null;
  }
}

describeOnBackends("group sender keys", (get) => {
  it("members who processed the SKDM decrypt group messages; repeats are duplicates", async function () {
    const { knex } = get().db;
    await ensureInboxTable(knex);
    const world = makeCrypto(knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    const carol = await newDevice(world, "gatekeeper");
    const group = "k3x9q2@g.wa.example";
    const from = address(alice.jid, alice.device.deviceId);

    const dist = await alice.device.groups.distribution(group);
    assert.equal(
      (await alice.device.groups.distribution(group)).distributionId,
      dist.distributionId,
    );
    await bob.device.groups.processDistribution(group, from, dist.skdm);
    await carol.device.groups.processDistribution(group, from, dist.skdm);

    const c1 = await alice.device.groups.encrypt(group, utf8("hello group"));
    const c2 = await alice.device.groups.encrypt(group, utf8("second"));
    for (const member of [bob, carol]) {
      // Out of order, and stored in the same transaction as the sender key advance.
      for (const c of [c2, c1]) {
        await member.device.groups.decrypt(group, from, c, async (p, trx) => {
          await trx("test_crypto_inbox").insert({ receiver: member.jid, body: text(p) });
        });
      }
      await assert.rejects(
        member.device.groups.decrypt(group, from, c1, async () => undefined),
        DuplicateMessageError,
      );
      const rows = await knex("test_crypto_inbox").where({ receiver: member.jid }).orderBy("body");
      assert.deepEqual(
        rows.map((r: { body: string }) => r.body),
        ["hello group", "second"],
      );
    }
  });

  it("a group message without the sender key asks for it, and a key bound to another group is refused", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    const from = address(alice.jid, alice.device.deviceId);
    const group = "grp1@g.wa.example";
    const other = "grp2@g.wa.example";
    const dist = await alice.device.groups.distribution(group);
    const ciphertext = await alice.device.groups.encrypt(group, utf8("too early"));
    await assert.rejects(
      bob.device.groups.decrypt(group, from, ciphertext, async () => undefined),
      NoSenderKeyError,
    );
    await bob.device.groups.processDistribution(group, from, dist.skdm);
    await assert.rejects(
      bob.device.groups.processDistribution(other, from, dist.skdm),
      SenderKeyGroupMismatchError,
    );
    await assert.rejects(
      bob.device.groups.decrypt(other, from, ciphertext, async () => undefined),
      SenderKeyGroupMismatchError,
    );
    const plain = await bob.device.groups.decrypt(group, from, ciphertext, async (p) => text(p));
    assert.equal(plain, "too early");
  });

  it("two members' SKDMs under one distribution id for two groups, processed at the same time: the second is refused", async function () {
    // Another member reusing a distribution id it saw (in the clear in every group message) for
    // another group: the binding of a distribution id to one group holds also when the receiver
    // processes different groups' deliveries in parallel (issue #15).
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const mallory = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    const group = "grp5@g.wa.example";
    const other = "grp6@g.wa.example";
    const dist = await alice.device.groups.distribution(group);
    const copied = await SenderKeyDistributionMessage.create(
      ProtocolAddress.new(mallory.jid, mallory.device.deviceId),
      dist.distributionId,
      new MemorySenderKeyStore(),
    );
    const outcomes = await Promise.allSettled([
      bob.device.groups.processDistribution(
        group,
        address(alice.jid, alice.device.deviceId),
        dist.skdm,
      ),
      bob.device.groups.processDistribution(
        other,
        address(mallory.jid, mallory.device.deviceId),
        copied.serialize(),
      ),
    ]);
    assert.equal(outcomes[0]?.status, "fulfilled", "the first is kept");
    assert.ok(
      outcomes[1]?.status === "rejected" &&
        outcomes[1].reason instanceof SenderKeyGroupMismatchError,
      "the second is refused",
    );
    const c = await alice.device.groups.encrypt(group, utf8("still readable"));
    const plain = await bob.device.groups.decrypt(
      group,
      address(alice.jid, alice.device.deviceId),
      c,
      async (p) => text(p),
    );
    assert.equal(plain, "still readable");
  });

  it("rotation creates a new distribution id that members need before they can read on", async function () {
    const world = makeCrypto(get().db.knex);
    const alice = await newDevice(world, "provider");
    const bob = await newDevice(world, "gatekeeper");
    const from = address(alice.jid, alice.device.deviceId);
    const group = "grp3@g.wa.example";
    const first = await alice.device.groups.distribution(group);
    await bob.device.groups.processDistribution(group, from, first.skdm);
    const rotated = await alice.device.groups.rotate(group);
    assert.notEqual(rotated.distributionId, first.distributionId);
    const c = await alice.device.groups.encrypt(group, utf8("after rotation"));
    await assert.rejects(
      bob.device.groups.decrypt(group, from, c, async () => undefined),
      NoSenderKeyError,
    );
    await bob.device.groups.processDistribution(group, from, rotated.skdm);
    assert.equal(
      await bob.device.groups.decrypt(group, from, c, async (p) => text(p)),
      "after rotation",
    );
  });
});
