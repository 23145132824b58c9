import assert from "node:assert/strict";
import { createServer } from "node:net";
import { AppServiceRegistration, Bridge, type WeakEvent } from "matrix-appservice-bridge";
import { createTestHomeserver, type AppserviceRegistration, type TestHomeserver } from "./index.js";
import { api, enc, eventually } from "./testHelpers.js";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** The appservice library the bridge is built on, driven against each profile. */
describe("test homeserver with matrix-appservice-bridge", function () {
  for (const profile of ["synapse-1.67", "synapse-1.92", "spec"] as const) {
    it(`${profile}: a ghost registers, opens a DM, and the bridge receives the user's reply once`, async function () {
      const port = await freePort();
      const reg = new AppServiceRegistration(`http://127.0.0.1:${port}`);
      reg.setId("wa");
      reg.setHomeserverToken("hs_tok");
      reg.setAppServiceToken("as_tok");
      reg.setSenderLocalpart("wabot");
      reg.addRegexPattern("users", "@_wa_.*", true);
      const hs: TestHomeserver = createTestHomeserver({
        serverName: "hs.test",
        profile,
        appservices: [reg.getOutput() as unknown as AppserviceRegistration],
      });
      await hs.start();
      const seen: WeakEvent[] = [];
      const bridge = new Bridge({
        homeserverUrl: hs.url,
        domain: "hs.test",
        registration: reg,
        disableStores: true,
        controller: { onEvent: (request) => void seen.push(request.getData()) },
      });
      try {
        await bridge.initialise();
        await bridge.listen(port, "127.0.0.1");
        const alice = hs.registerUser("alice");
        const ghost = bridge.getIntent("@_wa_1:hs.test");
        await ghost.ensureRegistered();
        await ghost.setDisplayName("Ghost One");
        const { room_id: roomId } = await ghost.createRoom({
          createAsClient: true,
          options: { invite: [alice.userId], is_direct: true, name: "DM" },
        });
        await ghost.sendText(roomId, "hi from whatsapp");
        const mxc = await ghost.uploadContent(Buffer.from("hello"), {
          name: "a.txt",
          type: "text/plain",
        });
        assert.match(mxc, /^mxc:\/\/hs\.test\//);

        assert.equal(
          (
            await api(hs.url, "POST", `/_matrix/client/v3/join/${enc(roomId)}`, {
              token: alice.accessToken,
              body: {},
            })
          ).status,
          200,
        );
        const sent = await api(
          hs.url,
          "PUT",
          `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/x1`,
          {
            token: alice.accessToken,
            body: { msgtype: "m.text", body: "hi ghost" },
          },
        );
        await hs.appserviceIdle("wa");
        const reply = await eventually(
          () => seen.find((e) => e.event_id === sent.json["event_id"]),
          "alice's reply at the bridge",
        );
        assert.equal(reply.sender, alice.userId);
        assert.equal(seen.filter((e) => e.event_id === sent.json["event_id"]).length, 1);
        const member = await api(
          hs.url,
          "GET",
          `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc("@_wa_1:hs.test")}`,
          {
            token: alice.accessToken,
          },
        );
        assert.equal(member.json["displayname"], "Ghost One");
      } finally {
        await bridge.close();
        await hs.stop();
      }
    });
  }
});
