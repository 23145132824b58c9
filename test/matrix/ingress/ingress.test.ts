import assert from "node:assert/strict";
import type { WeakEvent } from "matrix-appservice-bridge";
import { SqlRunner, type SqlValue, type Tx } from "../../../src/db/sql.js";
import { INBOX_RETENTION_MS, MatrixInboxTable } from "../../../src/matrix/ingress/inbox.js";
import { MatrixIngress, type IngressOptions } from "../../../src/matrix/ingress/index.js";
import { BridgeError } from "../../../src/util/errors.js";
import { silentLogger } from "../../../src/util/log.js";
import { describeOnBackends } from "../../helpers/db.js";

let n = 0;
function event(room: string, body: string, sender = "@alice:example.org"): WeakEvent {
  n += 1;
  return {
    event_id: `$e${n}-${Date.now()}`,
    room_id: room,
    sender,
    type: "m.room.message",
    content: { msgtype: "m.text", body },
    origin_server_ts: Date.now(),
  } as unknown as WeakEvent;
}

/** A homeserver error as matrix-bot-sdk throws it. */
function httpError(statusCode: number, errcode: string): Error {
  return Object.assign(new Error(errcode), { statusCode, errcode });
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describeOnBackends("the Matrix inbox", (get) => {
  let inbox: MatrixInboxTable;
  before(function () {
    inbox = new MatrixInboxTable(SqlRunner.of(get().db.knex));
  });

  it("records a transaction once, keeps each room's events in arrival order", async function () {
    const entries = ["a", "b", "c"].map((body, i) => {
      const e = event(i === 1 ? "!other:x" : "!room:x", body);
      return { eventId: e.event_id, roomId: e.room_id, json: JSON.stringify(e) };
    });
    const first = await inbox.record("t-order", entries);
    assert.equal(first.fresh, true);
    assert.deepEqual(
      [...first.inserted.keys()],
      entries.map((e) => e.eventId),
    );
    assert.deepEqual(await inbox.record("t-order", entries), { fresh: false, inserted: new Map() });
    // The same events under another transaction id are not recorded twice either.
    assert.deepEqual(await inbox.record("t-order-2", entries), {
      fresh: true,
      inserted: new Map(),
    });
    const pending = await inbox.pending("!room:x", 10);
    assert.deepEqual(
      pending.map((r) => (JSON.parse(r.event) as { content: { body: string } }).content.body),
      ["a", "c"],
    );
    assert.deepEqual((await inbox.roomsWithPending()).sort(), ["!other:x", "!room:x"]);
  });

  it("a dead letter is counted, listed, revived to pending, and old handled rows are pruned", async function () {
    const [first, second] = await inbox.pending("!room:x", 10);
    assert.ok(first !== undefined && second !== undefined);
    await inbox.settle(first.seq, "dead", 3, "M_UNKNOWN (502)");
    await inbox.settle(second.seq, "done", 1, null, Date.now() - INBOX_RETENTION_MS - 1);
    assert.equal(await inbox.countDead(), 1);
    assert.deepEqual(
      (await inbox.dead(10)).map((r) => [r.eventId, r.attempts, r.error]),
      [[first.eventId, 3, "M_UNKNOWN (502)"]],
    );
    assert.deepEqual(await inbox.revive(first.seq), ["!room:x"]);
    assert.equal(await inbox.countDead(), 0);
    assert.deepEqual(
      (await inbox.pending("!room:x", 10)).map((r) => [r.eventId, r.attempts]),
      [[first.eventId, 0]],
    );
    assert.ok((await inbox.prune()) >= 1);
    const left = await get().db.knex("matrix_inbox").where({ event_id: second.eventId });
    assert.equal(left.length, 0, "the handled row older than the retention is gone");
  });
});

describeOnBackends("the Matrix inbox's statements", (get) => {
  /** A runner that notes the statements its `transaction` and `connection` work runs. */
  function counting(statements: string[]): SqlRunner {
    const real = SqlRunner.of(get().db.knex);
    const wrap =
      <T>(fn: (tx: Tx) => Promise<T>) =>
      (tx: Tx): Promise<T> =>
        fn(
          Object.assign((table: string) => tx(table), tx, {
            run: (sql: string, params?: readonly SqlValue[]) => {
              statements.push(sql);
              return tx.run(sql, params);
            },
            all: <R>(sql: string, params?: readonly SqlValue[]) => {
              statements.push(sql);
              return tx.all<R>(sql, params);
            },
          }),
        );
    return {
      dialect: real.dialect,
      transaction: <T>(fn: (tx: Tx) => Promise<T>) => real.transaction(wrap(fn)),
      connection: <T>(fn: (tx: Tx) => Promise<T>) => real.connection(wrap(fn)),
    } as unknown as SqlRunner;
  }

  it("a transaction's events are recorded by one INSERT, in order, an event repeated in it once", async function () {
    const statements: string[] = [];
    const inbox = new MatrixInboxTable(counting(statements));
    const events = Array.from({ length: 5 }, (_, i) => event("!many:x", `m${i}`));
    const entries = events.map((e) => ({
      eventId: e.event_id,
      roomId: e.room_id,
      json: JSON.stringify(e),
    }));
    const recorded = await inbox.record(`t-many-${n}`, [...entries, entries[1]!]);
    assert.equal(recorded.fresh, true);
    assert.equal(recorded.inserted.size, 5);
    assert.equal(statements.filter((s) => s.startsWith("INSERT INTO matrix_inbox")).length, 1);
    assert.deepEqual(
      (await inbox.pending("!many:x", 10)).map((r) => r.eventId),
      events.map((e) => e.event_id),
    );
  });
});

describeOnBackends("the Matrix inbox's done marks", (get) => {
  it("rows of several rooms handled in the same turn are marked done by one statement", async function () {
    const real = SqlRunner.of(get().db.knex);
    const updates: string[] = [];
    const counting = {
      dialect: real.dialect,
      transaction: real.transaction.bind(real),
      connection: <T>(fn: (tx: Tx) => Promise<T>) =>
        real.connection((tx) =>
          fn(
            Object.assign((table: string) => tx(table), tx, {
              run: (sql: string, params?: readonly SqlValue[]) => {
                if (sql.startsWith("UPDATE matrix_inbox")) updates.push(sql);
                return tx.run(sql, params);
              },
            }),
          ),
        ),
    } as unknown as SqlRunner;
    const inbox = new MatrixInboxTable(counting);
    const rooms = ["!d1:x", "!d2:x", "!d3:x"];
    const entries = rooms.map((room) => {
      const e = event(room, "handled");
      return { eventId: e.event_id, roomId: room, json: JSON.stringify(e) };
    });
    await inbox.record(`t-done-${n}`, entries);
    const rows = (await Promise.all(rooms.map((room) => inbox.pending(room, 10)))).flat();
    assert.equal(rows.length, 3);
    await Promise.all(rows.map((row) => inbox.settle(row.seq, "done", 1, null)));
    assert.equal(updates.length, 1, "one statement for the three marks (#15)");
    const states = await get()
      .db.knex("matrix_inbox")
      .whereIn(
        "seq",
        rows.map((r) => r.seq),
      )
      .select("state", "attempts");
    assert.deepEqual(
      states.map((r: { state: string; attempts: number }) => [r.state, Number(r.attempts)]),
      [
        ["done", 1],
        ["done", 1],
        ["done", 1],
      ],
    );
    for (const room of rooms) assert.deepEqual(await inbox.pending(room, 10), []);
  });
});

describeOnBackends("per-room workers", (get) => {
  let ingress: MatrixIngress | undefined;
  afterEach(async function () {
    await ingress?.stop();
  });

  function start(options: Partial<IngressOptions>): MatrixIngress {
    ingress = new MatrixIngress({
      inbox: new MatrixInboxTable(SqlRunner.of(get().db.knex)),
      isOwnUser: (user) => user.startsWith("@bot"),
      route: () => Promise.resolve(),
      ephemeral: () => Promise.resolve(),
      notify: () => Promise.resolve(),
      log: silentLogger(),
      policy: { initialDelayMs: 20, maxDelayMs: 50, maxAttempts: 3 },
      ...options,
    });
    return ingress;
  }

  it("a permanent failure in one portal does not delay another portal's message by a second", async function () {
    const handled = new Map<string, number>();
    const notices: string[] = [];
    const poison = event("!a:x", "poison");
    const a = start({
      route: async (e) => {
        if (e.event_id === poison.event_id) {
          // Slow and then refused, as a homeserver answering 413 after a long wait.
          await new Promise((r) => setTimeout(r, 3000));
          throw httpError(413, "M_TOO_LARGE");
        }
        handled.set(e.event_id, Date.now());
      },
      notify: (room, text) => {
        notices.push(`${room} ${text}`);
        return Promise.resolve();
      },
    });
    const legit = event("!b:x", "legit");
    const after = event("!a:x", "after");
    const sentAt = Date.now();
    await a.receive({ id: `tp-${n}`, events: [poison, legit, after], ephemeral: [] });
    await until(() => handled.has(legit.event_id), "the other portal's message");
    assert.ok(handled.get(legit.event_id)! - sentAt < 1000, "no delay across portals");
    await until(() => handled.has(after.event_id), "the next message in the failing portal");
    assert.deepEqual(notices, [
      "!a:x Not bridged: this event could not be handled (M_TOO_LARGE (413)).",
    ]);
    const row = await get().db.knex("matrix_inbox").where({ event_id: poison.event_id }).first();
    assert.equal(row.state, "failed");
  });

  it("a transaction whose commit's answer was lost is handled when the homeserver repeats it", async function () {
    // The rows committed but the answer never came (PostgreSQL's connection cut after COMMIT):
    // the first call failed with 500, and its repeat finds the transaction id recorded.
    const table = new MatrixInboxTable(SqlRunner.of(get().db.knex));
    const record = table.record.bind(table);
    let lost = false;
    table.record = async (...args) => {
      const result = await record(...args);
      if (lost) return result;
      lost = true;
      throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "ECONNRESET" });
    };
    const handled: string[] = [];
    const ingress = start({
      inbox: table,
      route: (e) => {
        handled.push(e.event_id);
        return Promise.resolve();
      },
    });
    const lonely = event("!lost-answer:x", "after a lost answer");
    const txn = { id: `t-lost-${n}`, events: [lonely], ephemeral: [] };
    await assert.rejects(ingress.receive(txn), /terminated/);
    await ingress.receive(txn);
    await until(() => handled.includes(lonely.event_id), "the event of the repeated transaction");
    assert.deepEqual(handled, [lonely.event_id]);
  });

  it("a transient failure is retried in its room, then dead-lettered with a notice; a retry succeeds", async function () {
    let attempts = 0;
    let healthy = false;
    const notices: string[] = [];
    const done: string[] = [];
    const deadLetters: string[] = [];
    const stuck = event("!t:x", "stuck");
    const w = start({
      route: (e) => {
        if (e.event_id === stuck.event_id && !healthy) {
          attempts += 1;
          return Promise.reject(httpError(502, "M_UNKNOWN"));
        }
        done.push(e.event_id);
        return Promise.resolve();
      },
      notify: (_room, text) => {
        notices.push(text);
        return Promise.resolve();
      },
      observer: { matrixEventFailed: (kind) => kind === "dead-letter" && deadLetters.push(kind) },
    });
    const next = event("!t:x", "next");
    await w.receive({ id: `tt-${n}`, events: [stuck, next], ephemeral: [] });
    await until(() => done.includes(next.event_id), "the next event of the room");
    assert.equal(attempts, 3, "retried up to the bound");
    assert.equal(deadLetters.length, 1);
    assert.match(notices.join("\n"), /failed 3 times \(M_UNKNOWN \(502\)\).*dead-letters retry/);
    const [letter] = await w.deadLetters();
    assert.equal(letter?.eventId, stuck.event_id);
    healthy = true;
    assert.equal(await w.retryDeadLetters(letter?.seq), 1);
    await until(() => done.includes(stuck.event_id), "the retried dead letter");
    assert.equal((await w.deadLetters()).length, 0);
  });

  it("a BridgeError with retryAt is transient; the bridge's own echoes are never recorded", async function () {
    let calls = 0;
    const w = start({
      route: () => {
        calls += 1;
        return calls === 1
          ? Promise.reject(new BridgeError("busy", "busy", { retryAt: new Date(Date.now() + 30) }))
          : Promise.resolve();
      },
    });
    const echo = event("!e:x", "echo", "@bot:x");
    const real = event("!e:x", "real");
    await w.receive({ id: `te-${n}`, events: [echo, real], ephemeral: [] });
    await until(() => calls === 2, "the retry");
    const rows = await get().db.knex("matrix_inbox").where({ room_id: "!e:x" });
    assert.deepEqual(
      rows.map((r: { event_id: string }) => r.event_id),
      [real.event_id],
    );
  });

  it("only an event's first attempt ever is routed as one: not a retry, a repeat, a revived dead letter, an old event or a row of an earlier run", async function () {
    const body = (e: WeakEvent): string => (e.content as { body: string }).body;
    const attempts: string[] = [];
    const failures = new Map<string, number>();
    const w = start({
      route: (e, attempt) => {
        attempts.push(`${body(e)} ${attempt.firstAttempt}`);
        const left = failures.get(e.event_id) ?? 0;
        if (left === 0) return Promise.resolve();
        failures.set(e.event_id, left - 1);
        return Promise.reject(httpError(502, "M_UNKNOWN"));
      },
    });
    const fresh = event("!f:x", "fresh");
    const flaky = event("!f:x", "flaky");
    failures.set(flaky.event_id, 1);
    // Older than half the inbox's retention: its earlier row may have been pruned (receive).
    const old = { ...event("!f:x", "old"), origin_server_ts: Date.now() - 13 * 3600_000 };
    const stuck = event("!f:x", "stuck");
    failures.set(stuck.event_id, 3);
    const txn = { id: `tf-${n}`, events: [fresh, flaky, old, stuck], ephemeral: [] };
    await w.receive(txn);
    await until(() => attempts.length === 7, "every attempt");
    await until(() => w.busyRooms === 0, "the room's worker done");
    // The homeserver repeats the transaction, then sends the events again in a new one.
    await w.receive(txn);
    await w.receive({ ...txn, id: `tf-again-${n}` });
    const [letter] = await w.deadLetters();
    assert.equal(letter?.eventId, stuck.event_id);
    assert.equal(await w.retryDeadLetters(letter?.seq), 1);
    await until(() => attempts.length === 8, "the revived dead letter");
    assert.deepEqual(attempts, [
      "fresh true",
      "flaky true",
      "flaky false",
      "old false",
      "stuck true",
      "stuck false",
      "stuck false",
      "stuck false",
    ]);

    // A row recorded by an earlier run (pending after a crash, say) is no first attempt either.
    await w.stop();
    const inbox = new MatrixInboxTable(SqlRunner.of(get().db.knex));
    const leftover = event("!f:x", "leftover");
    const json = JSON.stringify(leftover);
    await inbox.record(`tf-crash-${n}`, [{ eventId: leftover.event_id, roomId: "!f:x", json }]);
    const next = start({
      route: (e, attempt) => {
        attempts.push(`${body(e)} ${attempt.firstAttempt}`);
        return Promise.resolve();
      },
    });
    await next.start();
    await until(() => attempts.length === 9, "the leftover row");
    assert.equal(attempts.at(-1), "leftover false");
  });

  it("a transaction of the bridge's own echoes only writes nothing, not even its id", async function () {
    const w = start({});
    const { knex } = get().db;
    const id = `tx-echo-${n}`;
    await w.receive({ id, events: [event("!x:x", "echo", "@bot:x")], ephemeral: [] });
    const recorded = await knex("matrix_transactions").where({ txn_id: id });
    assert.equal(recorded.length, 0, "no statement for a transaction with nothing to record");
    assert.equal((await knex("matrix_inbox").where({ room_id: "!x:x" })).length, 0);
  });
});
