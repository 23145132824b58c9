import assert from "node:assert/strict";
import { createServer } from "node:net";
import { TransactionalAppService, type Transaction } from "../../src/matrix/transactions.js";
import { silentLogger } from "../../src/util/log.js";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The appservice HTTP surface as a hostile or broken client meets it. */
describe("the appservice HTTP surface answers JSON errors and takes each transaction once", function () {
  this.timeout(30_000);
  let appService: TransactionalAppService;
  let base: string;
  const taken: Transaction[] = [];
  let release: (() => void) | undefined;

  before(async function () {
    const port = await freePort();
    appService = new TransactionalAppService("hs-token", silentLogger());
    appService.setTransactionHandler(async (txn) => {
      taken.push(txn);
      if (release === undefined) return;
      await new Promise<void>((resolve) => {
        const previous = release;
        release = () => {
          previous?.();
          resolve();
        };
      });
    });
    await appService.listen(port, "127.0.0.1", 10);
    base = `http://127.0.0.1:${port}/_matrix/app/v1/transactions`;
  });
  after(async function () {
    await appService.close();
  });

  async function put(id: string, body: string, type = "application/json", token = "hs-token") {
    const answer = await fetch(`${base}/${id}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": type },
      body,
    });
    const text = await answer.text();
    return { status: answer.status, type: answer.headers.get("content-type") ?? "", text };
  }

  it("a body that is not JSON is 400 M_NOT_JSON as JSON, with no stack trace or paths", async function () {
    const answer = await put("bad-json", "{not json");
    assert.equal(answer.status, 400);
    assert.match(answer.type, /application\/json/);
    assert.equal((JSON.parse(answer.text) as { errcode: string }).errcode, "M_NOT_JSON");
    assert.doesNotMatch(answer.text, /node_modules|at |<html|<pre/i);
  });

  it("the token is checked before the body is read", async function () {
    const answer = await put("bad-token", "{not json", "application/json", "wrong");
    assert.equal(answer.status, 403);
    assert.equal((JSON.parse(answer.text) as { errcode: string }).errcode, "M_FORBIDDEN");
    const big = await put("bad-token-big", "x".repeat(6_000_000), "application/json", "wrong");
    assert.equal(big.status, 403, "an oversized body with a wrong token is refused for the token");
  });

  it("an oversized body is 413 M_TOO_LARGE as JSON", async function () {
    const answer = await put("too-big", JSON.stringify({ events: ["x".repeat(6_000_000)] }));
    assert.equal(answer.status, 413);
    assert.equal((JSON.parse(answer.text) as { errcode: string }).errcode, "M_TOO_LARGE");
  });

  it("a text/plain body is refused, not acknowledged as empty: the correct retry is then taken", async function () {
    const before = taken.length;
    const event = { event_id: "$1", room_id: "!r:x", sender: "@a:x", type: "m.room.message" };
    const plain = await put("plain", JSON.stringify({ events: [event] }), "text/plain");
    assert.equal(plain.status, 400);
    assert.equal(taken.length, before, "nothing was taken");
    const retry = await put("plain", JSON.stringify({ events: [event] }));
    assert.equal(retry.status, 200);
    assert.equal(taken.length, before + 1);
    assert.equal(taken.at(-1)?.events.length, 1, "the retry's event is not lost");
    const noEvents = await put("no-events", JSON.stringify({ ephemeral: [] }));
    assert.equal(noEvents.status, 400);
  });

  it("two copies of one transaction arriving at once are taken once, and both answered 200", async function () {
    const before = taken.length;
    release = () => undefined;
    const body = JSON.stringify({ events: [] });
    const first = put("twice", body);
    const second = put("twice", body);
    await new Promise((r) => setTimeout(r, 200));
    const open = release;
    release = undefined;
    open();
    const answers = await Promise.all([first, second]);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200],
    );
    assert.equal(taken.length, before + 1);
  });
});
