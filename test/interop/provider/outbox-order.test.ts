import assert from "node:assert/strict";
import type { Knex } from "knex";
import { SqlRunner } from "../../../src/db/sql.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import { Outbox } from "../../../src/interop/provider/outbox.js";
import type { HelloSession } from "../../../src/interop/provider/session.js";
import type { EngineTiming } from "../../../src/interop/provider/types.js";
import type { BareJid, MessageId } from "../../../src/util/ids.js";
import { silentLogger } from "../../../src/util/log.js";
import { describeOnBackends } from "../../helpers/db.js";
import { FAST_TIMING } from "./world.js";

let n = 0;
const unique = (what: string): string => `${what}-${Date.now()}-${++n}`;

/**
 * The database as the outbox sees it, with one kind of statement on the `outbox` table failing
 * while `failing` says so, as when the connection is lost just as that statement runs.
 */
function flakyKnex(knex: Knex, failing: (query: { method: string; sql: string }) => boolean): Knex {
  return new Proxy(knex, {
    apply(target, thisArg, args: unknown[]) {
      const builder = Reflect.apply(target, thisArg, args) as Knex.QueryBuilder;
      if (args[0] !== "outbox") return builder;
      const then = builder.then.bind(builder);
      return Object.assign(builder, {
        then: (resolve?: (value: unknown) => unknown, reject?: (err: unknown) => unknown) => {
          const { method, sql } = builder.toSQL();
          if (!failing({ method, sql })) return then(resolve, reject);
          const lost = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
          return Promise.reject(lost).then(resolve, reject);
        },
      });
    },
  });
}

describeOnBackends("provider outbox: order across a lost database connection", (get) => {
  const to = "dave@wa.example" as BareJid;
  let sender: string;
  let sent: string[];
  let outbox: Outbox;
  let fail: { method: string; sql: RegExp } | undefined;

  beforeEach(async function () {
    sender = `${unique("alice")}@bridge.example/1`;
    sent = [];
    fail = undefined;
    const hello = {};
    const session = {
      ready: true,
      info: hello,
      limits: { "dedup-window-seconds": 7 * 86_400 },
      send: (stanza: XmlElement) => {
        sent.push(String(stanza.attrs.id));
        return Promise.resolve();
      },
    } as unknown as HelloSession;
    outbox = new Outbox({
      knex: flakyKnex(
        get().db.knex,
        (q) => fail !== undefined && q.method === fail.method && fail.sql.test(q.sql),
      ),
      session,
      // Rows stored as sent are retransmitted by timer only after an hour.
      timing: FAST_TIMING as EngineTiming,
      now: Date.now,
      logger: silentLogger(),
      emit: () => Promise.resolve(),
    });
    // The first pass after the hello: from here on a stanza may go out directly.
    await outbox.flush();
  });

  /**
   * Stores a message as the sender does (already sent), and hands it to `sendCommitted`; with
   * `behindDue`, while rows may be due (a kick), so that it is made due rather than sent.
   */
  async function send({ behindDue = false } = {}): Promise<string> {
    const originId = unique("m") as MessageId;
    const row = {
      kind: "message" as const,
      senderJid: sender,
      conversationJid: to,
      toJid: to,
      originId,
      stanza: `<message to='${to}' id='${originId}' type='chat'/>`,
    };
    const id = await SqlRunner.of(get().db.knex).transaction((tx) => outbox.insertSent(tx, row));
    if (behindDue) outbox.kick();
    outbox.sendCommitted(id, row);
    await settled();
    return originId;
  }

  /** Until the outbox's queue is empty, the pass a kick schedules included. */
  async function settled(): Promise<void> {
    await outbox.idle();
    await new Promise((resolve) => setImmediate(resolve));
    await outbox.idle();
  }

  /** What went out of this test's rows, in order (the database holds the file's other rows). */
  const mine = (ids: string[]): string[] => sent.filter((id) => ids.includes(id));

  it("a message made due by a pass that then lost the connection goes out before a later one", async function () {
    fail = { method: "select", sql: /from .outbox. where .state. in/ };
    const first = await send({ behindDue: true });
    assert.deepEqual(mine([first]), [], "the pass that failed sent nothing");
    fail = undefined;
    const second = await send();
    await outbox.flush();
    await settled();
    assert.deepEqual(mine([first, second]), [first, second]);
  });

  it("a message that could not be made due goes out with the next pass, before a later one", async function () {
    fail = { method: "update", sql: /.first_sent_at. = / };
    const first = await send({ behindDue: true });
    fail = undefined;
    const second = await send();
    await outbox.flush();
    await settled();
    assert.deepEqual(mine([first, second]), [first, second]);
  });
});
