import assert from "node:assert/strict";
import { SqlRunner, type Tx } from "../../../src/db/sql.js";
import { Outbox } from "../../../src/interop/provider/outbox.js";
import * as outboxStore from "../../../src/interop/store/outbox.js";
import { acceptanceKey } from "../../../src/interop/store/outbox.js";
import type { HelloSession } from "../../../src/interop/provider/session.js";
import type { EngineTiming, ProviderEvent } from "../../../src/interop/provider/types.js";
import type { BareJid, MessageId, StanzaId } from "../../../src/util/ids.js";
import { silentLogger } from "../../../src/util/log.js";
import { describeOnBackends } from "../../helpers/db.js";
import { watchRunner, watchedTx } from "../../helpers/sql-trace.js";

let n = 0;
const unique = (what: string): string => `${what}-${Date.now()}-${++n}`;

/** A row from `sender` to `to` with a stanza naming its origin-id. */
const outboxRow = (
  kind: "message" | "receipt",
  sender: string,
  to: BareJid,
  originId: MessageId,
  resendKey = "",
) => ({
  kind,
  senderJid: sender,
  conversationJid: to,
  toJid: to,
  originId,
  resendKey,
  stanza: `<message id='${originId}'/>`,
});

describeOnBackends("outbox store: acceptances", (get) => {
  it("answers arriving together are found by one read, each on the first unresolved row of its key, and resolved by one write", async function () {
    const sql = SqlRunner.of(get().db.knex);
    const sender = `${unique("alice")}@bridge.example/1`;
    const to = "bob@wa.example" as BareJid;
    const [m1, m2, r1] = [unique("m1"), unique("m2"), unique("r1")] as MessageId[];
    const ids = await sql.transaction(async (tx) => {
      const row = (kind: "message" | "receipt", originId: MessageId, resendKey = "") =>
        outboxRow(kind, sender, to, originId, resendKey);
      return {
        m1: await outboxStore.insert(tx, row("message", m1!), 1000, 5000),
        // A retry re-send of m1: the first transmission is still the unresolved row answered.
        m1again: await outboxStore.insert(tx, row("message", m1!, "retry-1"), 1001, 5000),
        m2: await outboxStore.insert(tx, row("message", m2!), 1002, 5000),
        r1: await outboxStore.insert(tx, row("receipt", r1!), 1003, 5000),
      };
    });
    const statements: string[] = [];
    const counting = (tx: Tx): Tx => watchedTx(tx, (text) => void statements.push(text));
    const found = await sql.connection((tx) =>
      outboxStore.firstUnresolvedMany(counting(tx), [
        { senderJid: sender, originId: m1! },
        { senderJid: sender, originId: m2! },
        { senderJid: sender, originId: r1! },
        { senderJid: sender, originId: "none" as MessageId },
      ]),
    );
    assert.equal(statements.length, 1, "one statement for the batch (#15)");
    assert.deepEqual(
      [...found.keys()].sort(),
      [acceptanceKey(sender, m1!), acceptanceKey(sender, m2!), acceptanceKey(sender, r1!)].sort(),
    );
    assert.equal(found.get(acceptanceKey(sender, m1!))?.id, ids.m1, "the first unresolved row");
    const states = async () =>
      (
        await get()
          .db.knex("outbox")
          .whereIn("id", [ids.m1, ids.m1again, ids.m2, ids.r1])
          .orderBy("id")
          .select("id", "state", "stanza_id", "seq", "stamp", "hold")
      ).map((r: { state: string; stanza_id: string | null; seq: unknown; stamp: unknown }) => [
        r.state,
        r.stanza_id,
        r.seq === null ? null : Number(r.seq),
        r.stamp === null ? null : Number(r.stamp),
      ]);
    const untouched = ["sent", null, null, null];
    assert.deepEqual(await states(), [untouched, untouched, untouched, untouched], "only read");
    await sql.connection((tx) =>
      outboxStore.resolveAccepted(counting(tx), [
        { id: ids.m1, stanzaId: "s1", seq: 7, stamp: 2000 },
        { id: ids.m2, stanzaId: "s2", seq: undefined, stamp: 2001 },
        { id: ids.r1, stanzaId: "s3", seq: 9, stamp: 2002 },
      ]),
    );
    assert.equal(statements.length, 2, "one more statement resolves the batch");
    assert.deepEqual(await states(), [
      ["accepted", "s1", 7, 2000],
      untouched,
      ["accepted", "s2", null, 2001],
      ["accepted", "s3", 9, 2002],
    ]);
  });

  it("answers to non-message rows resolve them in one statement; a message row is left for the core", async function () {
    const { knex } = get().db;
    const sql = SqlRunner.of(knex);
    const sender = `${unique("gina")}@bridge.example/1`;
    const to = "hank@wa.example" as BareJid;
    const message = unique("m") as MessageId;
    const receipt = unique("r") as MessageId;
    const unknown = unique("u") as MessageId;
    await sql.transaction(async (tx) => {
      for (const [kind, originId] of [
        ["message", message],
        ["receipt", receipt],
      ] as const) {
        await outboxStore.insert(tx, outboxRow(kind, sender, to, originId), 1000, 5000);
      }
    });
    const answer = (originId: MessageId, seq: number) => ({
      senderJid: sender,
      originId,
      stanzaId: `st-${originId}`,
      seq,
      stamp: 2000 + seq,
    });
    const resolved = await sql.connection((tx) =>
      outboxStore.resolveAcceptedNonMessages(tx, [
        answer(message, 1),
        answer(receipt, 2),
        answer(unknown, 3),
      ]),
    );
    assert.deepEqual([...resolved], [acceptanceKey(sender, receipt)]);
    const rows = (await knex("outbox")
      .whereIn("origin_id", [message, receipt])
      .orderBy("id")
      .select("kind", "state", "stanza_id", "seq")) as Record<string, unknown>[];
    assert.deepEqual(
      rows.map((r) => [r.kind, r.state, r.stanza_id, r.seq === null ? null : Number(r.seq)]),
      [
        ["message", "sent", null, null],
        ["receipt", "accepted", `st-${receipt}`, 2],
      ],
    );
    // Answered again: the row is resolved, nothing is found.
    const again = await sql.connection((tx) =>
      outboxStore.resolveAcceptedNonMessages(tx, [answer(receipt, 2)]),
    );
    assert.equal(again.size, 0);
  });

  it("the outbox answers <accepted> stanzas arriving together with one acceptance statement", async function () {
    const { knex } = get().db;
    const sql = SqlRunner.of(knex);
    const sender = `${unique("carol")}@bridge.example/1`;
    const to = "dave@wa.example" as BareJid;
    const origins = [unique("a"), unique("b"), unique("c")] as MessageId[];
    await sql.transaction(async (tx) => {
      for (const originId of origins) {
        await outboxStore.insert(tx, outboxRow("message", sender, to, originId), 1000, 5000);
      }
    });
    const emitted: ProviderEvent[] = [];
    const outbox = new Outbox({
      knex,
      session: {} as HelloSession,
      timing: {} as EngineTiming,
      now: () => 3000,
      logger: silentLogger(),
      emit: (event) => {
        emitted.push(event);
        return Promise.resolve();
      },
    });
    const acceptances: string[] = [];
    const restore = watchRunner(sql, "connection", (text) => void acceptances.push(text));
    try {
      await Promise.all(
        origins.map((originId, i) =>
          outbox.onAccepted(sender, {
            originId,
            stanzaId: `st-${originId}` as StanzaId,
            seq: i + 1,
            stamp: new Date(2000 + i),
          } as Parameters<Outbox["onAccepted"]>[1]),
        ),
      );
    } finally {
      restore();
    }
    assert.equal(acceptances.length, 2, "one read and one write for the three answers (#15)");
    assert.deepEqual(
      emitted.map((e) => (e.kind === "accepted" ? [e.originId, e.seq] : e.kind)),
      origins.map((o, i) => [o, i + 1]),
    );
    const states = await knex("outbox")
      .whereIn("origin_id", origins)
      .orderBy("id")
      .select("state", "stanza_id");
    assert.deepEqual(
      states.map((r: { state: string; stanza_id: string }) => [r.state, r.stanza_id]),
      origins.map((o) => ["accepted", `st-${o}`]),
    );
  });

  it("an acceptance the core could not take leaves the message row as it was, and the repeated answer resolves it", async function () {
    const { knex } = get().db;
    const sql = SqlRunner.of(knex);
    const sender = `${unique("erin")}@bridge.example/1`;
    const to = "frank@wa.example" as BareJid;
    const originId = unique("m") as MessageId;
    const id = await sql.transaction((tx) =>
      outboxStore.insert(tx, outboxRow("message", sender, to, originId), 1000, 5000),
    );
    let coreUp = false;
    const outbox = new Outbox({
      knex,
      session: {} as HelloSession,
      timing: {} as EngineTiming,
      now: () => 3000,
      logger: silentLogger(),
      emit: () => (coreUp ? Promise.resolve() : Promise.reject(new Error("the core is down"))),
    });
    const answer = {
      originId,
      stanzaId: "st-1" as StanzaId,
      seq: 4,
      stamp: new Date(2000),
    } as Parameters<Outbox["onAccepted"]>[1];
    const row = async () =>
      (await knex("outbox").where({ id }).first("state", "stanza_id", "attempts")) as {
        state: string;
        stanza_id: string | null;
      };
    const before = await row();
    await assert.rejects(outbox.onAccepted(sender, answer), /the core is down/);
    assert.deepEqual(await row(), before, "nothing written: the retransmission brings it again");
    coreUp = true;
    await outbox.onAccepted(sender, answer);
    assert.deepEqual(
      { state: (await row()).state, stanzaId: (await row()).stanza_id },
      { state: "accepted", stanzaId: "st-1" },
    );
  });
});
