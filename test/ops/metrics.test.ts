import assert from "node:assert/strict";
import type { RemoteUserId } from "../../src/core/network.js";
import { PortalsTable } from "../../src/db/portals.js";
import { UsersTable } from "../../src/db/users.js";
import { matrixUserId, roomId } from "../../src/util/ids.js";
import { OpsWorld, freePort, waitFor } from "./world.js";

const MY_PHONE = "+491700000011";
const PHONE_A = "+491701111122";

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of one sample line, `name{labels} value`; undefined when absent. */
function sample(text: string, name: string, labels = ""): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const [key, value] = [
      line.slice(0, line.lastIndexOf(" ")),
      line.slice(line.lastIndexOf(" ") + 1),
    ];
    if (key === (labels === "" ? name : `${name}{${labels}}`)) return Number(value);
  }
  return undefined;
}

/** The one portal of the test user: the room the bot and A's ghost share with them. */
async function portalRoom(world: OpsWorld): Promise<string> {
  const rooms = await world.me.request("GET", "/_matrix/client/v3/joined_rooms");
  const joined = (rooms.json["joined_rooms"] as string[]).filter((r) => r !== world.mgmt);
  for (const room of joined) {
    const events = await world.me.events(room);
    if (events.some((e) => e.sender.startsWith("@whatsapp_"))) return room;
  }
  throw new Error("no portal found");
}

async function ready(world: OpsWorld): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${world.bridgeUrl}/ready`, { signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function failing(body: Record<string, unknown>): string[] {
  const checks = body["checks"] as { name: string; ok: boolean }[];
  return checks.filter((c) => !c.ok).map((c) => c.name);
}

describe("metrics and health through the real bridge", function () {
  this.timeout(180_000);
  let world: OpsWorld;
  let metricsPort: number;

  before(async function () {
    metricsPort = await freePort();
    world = await OpsWorld.start("metrics", {
      config: { metrics: { enabled: true, bind_address: "127.0.0.1", port: metricsPort } },
    });
  });

  after(async function () {
    await world?.stop();
  });

  it("GET /metrics counts a conversation's messages, users and portals, and the gatekeeper is up", async function () {
    const [a] = await world.createWhatsAppUsers(PHONE_A);
    assert.ok(a !== undefined);
    await world.login(MY_PHONE);
    const portal = await world.startChat(PHONE_A);
    await world.sendText(portal, "first from matrix");
    await world.sendText(portal, "second from matrix");
    await waitFor("A to receive both messages", async () =>
      (await a.received("message")).length >= 2 ? true : undefined,
    );
    await a.send({ type: "text", to: world.myJid, text: "hello from whatsapp" });
    await world.sees(portal, "A's message on Matrix", (e) =>
      String(e.content["body"]).includes("hello from whatsapp"),
    );

    const text = await waitFor("the to-matrix count", async () => {
      const t = await scrape(metricsPort);
      return sample(t, "mwi_messages_bridged_total", 'direction="to-matrix",type="text"') === 1
        ? t
        : undefined;
    });
    assert.equal(
      sample(text, "mwi_messages_bridged_total", 'direction="to-network",type="text"'),
      2,
    );
    assert.equal(sample(text, "mwi_bridge_latency_seconds_count", 'direction="to-network"'), 2);
    assert.equal(sample(text, "mwi_bridge_latency_seconds_count", 'direction="to-matrix"'), 1);
    assert.equal(sample(text, "mwi_users_logged_in"), 1);
    assert.equal(sample(text, "mwi_portals"), 1);
    assert.equal(sample(text, "mwi_gatekeeper_connected"), 1);
    assert.equal(sample(text, "mwi_gatekeeper_state", 'code="ready"'), 1);
    assert.equal(sample(text, "mwi_decryption_failures_total"), 0);
    assert.equal(sample(text, "mwi_inbox_depth"), 0);
    assert.ok((sample(text, "mwi_outbox_depth") ?? -1) >= 0);
    assert.ok(
      (sample(text, "mwi_database_query_seconds_count", 'operation="select",outcome="ok"') ?? 0) >
        0,
      "database queries are timed",
    );
    assert.match(text, /# TYPE mwi_message_failures_total counter/);
  });

  it("the users and portals counts are the bridge's network's: another network's rows in the database are left out", async function () {
    const before = await scrape(metricsPort);
    const knex = world.world.bridge.db.knex;
    const users = new UsersTable(knex, "loopback");
    const portals = new PortalsTable(knex, "loopback");
    const other = matrixUserId("@someone-else:example.org");
    await users.ensure(other);
    await users.update(other, { loginState: "logged-in" });
    const portal = await portals.ensure(other, "loopback-contact" as RemoteUserId, "none");
    await portals.update(portal.id, { roomId: roomId("!elsewhere:example.org") });
    const after = await scrape(metricsPort);
    assert.equal(sample(after, "mwi_users_logged_in"), sample(before, "mwi_users_logged_in"));
    assert.equal(sample(after, "mwi_portals"), sample(before, "mwi_portals"));
  });

  it("a message the gatekeeper refuses is counted as a failure with its reason", async function () {
    const a = world.whatsapp(PHONE_A);
    const blocked = await a.request("POST", `/users/${a.digits}/blocks`, { jid: world.myJid });
    assert.equal(blocked.status, 200);
    const portal = await portalRoom(world);
    await world.sendText(portal, "after the block");
    await world.sees(portal, "the bot's failure notice", (e) =>
      /^Not delivered: the recipient does not accept/.test(String(e.content["body"])),
    );
    const text = await scrape(metricsPort);
    assert.equal(
      sample(text, "mwi_message_failures_total", 'direction="to-network",reason="blocked"'),
      1,
    );
  });

  it("GET /health answers while /ready names the gatekeeper, then the homeserver, when each goes down", async function () {
    const health = await fetch(`${world.bridgeUrl}/health`);
    assert.equal(health.status, 200);
    const up = await ready(world);
    assert.equal(up.status, 200, JSON.stringify(up.body));

    await world.world.sim.stop();
    const noGatekeeper = await waitFor("/ready to report the gatekeeper down", async () => {
      const r = await ready(world);
      return r.status === 503 ? r : undefined;
    });
    assert.deepEqual(failing(noGatekeeper.body), ["gatekeeper"]);
    const scraped = await scrape(metricsPort);
    assert.equal(sample(scraped, "mwi_gatekeeper_connected"), 0);

    await world.world.hs.stop();
    const neither = await ready(world);
    assert.equal(neither.status, 503);
    assert.deepEqual(failing(neither.body).sort(), ["gatekeeper", "homeserver"]);
    assert.equal((await fetch(`${world.bridgeUrl}/health`)).status, 200);
  });
});
