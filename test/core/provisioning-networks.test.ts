import assert from "node:assert/strict";
import type { Server } from "node:http";
import express from "express";
import { ProvisioningApi, ProvisioningAuth } from "../../src/provisioning/index.js";
import { silentLogger } from "../../src/util/log.js";
import { ALICE } from "./helpers.js";
import { WITH_INTEROP, createCoreOn, type NetHarness } from "./networks.js";

const SECRET = "provisioning-test-secret";

/**
 * The provisioning API takes and answers addresses of the network it serves: a handle network's
 * `bob@loop` as much as a phone network's `+49...` (it parsed every identifier as a phone number).
 */
for (const nut of WITH_INTEROP) {
  describe(`provisioning: identifiers are the network's addresses, on ${nut.label}`, function () {
    let h: NetHarness;
    let server: Server;
    let base: string;

    beforeEach(async function () {
      h = await createCoreOn(nut);
      await nut.logIn(h);
      await nut.addUser(h.network, nut.bob);
      const app = express();
      const auth = new ProvisioningAuth({
        sharedSecret: SECRET,
        homeserverUrl: "http://127.0.0.1:1",
        isBridgeUser: () => false,
      });
      new ProvisioningApi(h.core.provisioning, auth, silentLogger()).mount(app, "/prov");
      server = await new Promise<Server>((resolve) => {
        const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
      });
      const { port } = server.address() as { port: number };
      base = `http://127.0.0.1:${port}/prov/v3`;
    });
    afterEach(async function () {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await h.dispose();
    });

    async function call(
      method: string,
      path: string,
    ): Promise<{ status: number; json: Record<string, unknown> }> {
      const sep = path.includes("?") ? "&" : "?";
      const res = await fetch(`${base}${path}${sep}user_id=${encodeURIComponent(ALICE)}`, {
        method,
        headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    }

    it("resolve_identifier and create_dm take the address as the network writes it", async function () {
      const found = await call("GET", `/resolve_identifier/${encodeURIComponent(nut.bob.typed)}`);
      assert.equal(found.status, 200, JSON.stringify(found.json));
      assert.equal(found.json["mxid"], nut.bob.ghost);
      assert.equal(found.json["name"], nut.bob.shown);
      const scheme = h.core.network.identifier.uriScheme;
      assert.deepEqual(found.json["identifiers"], [
        scheme === undefined ? nut.bob.typed : `${scheme}:${nut.bob.typed}`,
      ]);
      const created = await call("POST", `/create_dm/${encodeURIComponent(nut.bob.typed)}`);
      assert.equal(created.status, 201, JSON.stringify(created.json));
      assert.equal(typeof created.json["dm_room_mxid"], "string");
    });

    it("an identifier that is no address of the network is refused with the network's noun", async function () {
      const refused = await call("GET", "/resolve_identifier/%3F%3F%3F");
      assert.equal(refused.status, 400);
      assert.equal(refused.json["errcode"], "M_INVALID_PARAM");
      assert.match(
        String(refused.json["error"]),
        new RegExp(`not a valid ${h.core.network.identifier.noun}`),
      );
    });
  });
}
