import assert from "node:assert/strict";
import { OpsWorld } from "../ops/world.js";

/**
 * Every route of the appservice API, current and legacy paths, with the homeserver token missing,
 * wrong in the header, wrong in the query, or a prefix of the right one: all refused before
 * anything is handled. The right token passes, so the refusals are the token check's doing.
 */
describe("hs_token on every appservice path", function () {
  this.timeout(120_000);
  let world: OpsWorld;
  let hsToken: string;

  before(async function () {
    world = await OpsWorld.start("hstoken");
    hsToken = world.world.registration.hs_token;
  });

  after(async function () {
    await world?.stop();
  });

  const ghost = encodeURIComponent("@whatsapp_491701234567:demo.example");
  const alias = encodeURIComponent("#whatsapp_x:demo.example");
  const routes: [string, string][] = [
    ["PUT", "/_matrix/app/v1/transactions/sec-1"],
    ["GET", `/_matrix/app/v1/users/${ghost}`],
    ["GET", `/_matrix/app/v1/rooms/${alias}`],
    ["PUT", "/transactions/sec-2"],
    ["GET", `/users/${ghost}`],
    ["GET", `/rooms/${alias}`],
  ];

  async function call(method: string, path: string, auth: { header?: string; query?: string }) {
    const url = new URL(`${world.bridgeUrl}${path}`);
    if (auth.query !== undefined) url.searchParams.set("access_token", auth.query);
    const transaction = method === "PUT";
    const body = transaction
      ? JSON.stringify({
          events: [
            {
              type: "m.room.message",
              room_id: "!nowhere:demo.example",
              sender: world.world.user.userId,
              event_id: `$forged-${Math.random()}`,
              content: { msgtype: "m.text", body: "forged" },
            },
          ],
        })
      : undefined;
    const res = await fetch(url, {
      method,
      headers: {
        ...(auth.header === undefined ? {} : { authorization: `Bearer ${auth.header}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(15_000),
    });
    return {
      status: res.status,
      json: (await res.json().catch(() => ({}))) as Record<string, unknown>,
    };
  }

  for (const [method, path] of routes) {
    it(`${method} ${path.replace(/%40.*|%23.*/, "…")} refuses a missing or wrong token`, async function () {
      const missing = await call(method, path, {});
      assert.equal(missing.status, 401);
      assert.equal(missing.json["errcode"], "M_MISSING_TOKEN");
      for (const auth of [
        { header: "wrong" },
        { query: "wrong" },
        { header: hsToken.slice(0, -1) },
        { header: `${hsToken}x` },
        { query: hsToken.toUpperCase() === hsToken ? `${hsToken}x` : hsToken.toUpperCase() },
      ]) {
        const wrong = await call(method, path, auth);
        assert.equal(wrong.status, 403, `${JSON.stringify(auth)} -> ${wrong.status}`);
        assert.equal(wrong.json["errcode"], "M_FORBIDDEN");
      }
      const right = await call(method, path, { header: hsToken });
      assert.ok(right.status !== 401 && right.status !== 403, `right token: ${right.status}`);
    });
  }
});
