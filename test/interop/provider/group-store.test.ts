import assert from "node:assert/strict";
import { SqlRunner } from "../../../src/db/sql.js";
import { GroupStore } from "../../../src/interop/provider/groups.js";
import type { GroupSnapshot } from "../../../src/interop/provider/types.js";
import type { BareJid } from "../../../src/util/ids.js";
import { describeOnBackends } from "../../helpers/db.js";

const local = "alice@bridge.example" as BareJid;
const bob = "bob@wa.example";
const dan = "dan@wa.example";
const eve = "eve@wa.example";

describeOnBackends("interop group store: sender key rotation (§17.5)", (get) => {
  let n = 0;
  let group: string;
  let store: GroupStore;
  const tx = <T>(fn: Parameters<SqlRunner["transaction"]>[0]) =>
    SqlRunner.of(get().db.knex).transaction(fn) as Promise<T>;
  const snapshot = (version: number, members: string[]): GroupSnapshot => ({
    jid: group,
    subject: "",
    version,
    participants: [local, ...members].map((jid) => ({ jid, role: "member" as const })),
  });
  /** A send that rotated and recorded its holders, as sender.ts does at commit. */
  const sent = (rotation: number) =>
    tx((t) =>
      store.recordHolders(t, local, group, `d${n}`, [{ jid: bob, device: 1 }], true, rotation),
    );

  beforeEach(function () {
    n += 1;
    group = `g${n}@groups.wa.example`;
    store = new GroupStore(get().db.knex, () => Date.now());
  });

  it("a removal committed while a rotating send was under way is not wiped by that send", async function () {
    await tx((t) => store.save(t, local, snapshot(1, [bob, dan, eve])));
    await sent((await store.get(local, group))?.rotation ?? 0);
    // eve is removed; a send reads the group with the rotation pending...
    await tx((t) => store.save(t, local, snapshot(2, [bob, dan])));
    const read = (await store.get(local, group)) ?? assert.fail();
    assert.equal(read.rotatePending, true);
    // ...dan is removed before it commits (a new rotation is needed: dan holds the new key)...
    await tx((t) => store.save(t, local, snapshot(3, [bob])));
    // ...and the send commits with what it read: the later request must survive.
    await sent(read.rotation);
    assert.equal((await store.get(local, group))?.rotatePending, true);
    // A send that read the current state clears it.
    await sent((await store.get(local, group))?.rotation ?? assert.fail());
    assert.equal((await store.get(local, group))?.rotatePending, false);
  });

  it("a group stored anew (first seen, or re-added after we left) rotates our sender key first", async function () {
    await tx((t) => store.save(t, local, snapshot(1, [bob, dan])));
    assert.equal((await store.get(local, group))?.rotatePending, true);
    await sent((await store.get(local, group))?.rotation ?? assert.fail());
    assert.equal((await store.get(local, group))?.rotatePending, false);
    // We leave; dan is removed while we are out; we are added back.
    await tx((t) => store.forget(t, local, group));
    await tx((t) => store.save(t, local, snapshot(4, [bob])));
    assert.equal((await store.get(local, group))?.rotatePending, true);
  });

  it("a member's removed device or changed identity asks for rotation in every group with them, a replaced device loses its key", async function () {
    const other = `other-${group}`;
    await tx((t) => store.save(t, local, snapshot(1, [bob, dan])));
    await tx((t) => store.save(t, local, { ...snapshot(1, [eve]), jid: other }));
    for (const jid of [group, other]) {
      const read = (await store.get(local, jid)) ?? assert.fail();
      await tx((t) =>
        store.recordHolders(
          t,
          local,
          jid,
          `d${n}`,
          [
            { jid: bob, device: 1 },
            { jid: dan, device: 2 },
          ],
          true,
          read.rotation,
        ),
      );
    }
    const before = (await store.get(local, group)) ?? assert.fail();
    assert.equal(before.rotatePending, false);

    await store.markRotationFor(local, dan);
    const after = (await store.get(local, group)) ?? assert.fail();
    assert.equal(after.rotatePending, true);
    assert.equal(after.rotation, before.rotation + 1);
    assert.equal((await store.get(local, other))?.rotatePending, false, "dan is not in the other");

    await store.forgetHolders(local, bob, [1]);
    assert.deepEqual([...(await store.holders(local, group, `d${n}`))], [`${dan}/2`]);
  });
});
