import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { E2e, element, type Received, type WhatsAppUser } from "./harness.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("base64");

function mediaOf(entry: Received): Record<string, unknown> | undefined {
  return element(entry, "media")?.["media"] as Record<string, unknown> | undefined;
}

/** As a Matrix client on that homeserver would: the legacy endpoint where v1 is missing. */
async function downloadAsClient(e: E2e, mxc: string): Promise<Buffer> {
  if (profile(e) === "synapse-current") return e.download(mxc);
  const response = await fetch(
    `${e.world.hs.url}/_matrix/media/v3/download/${mxc.slice("mxc://".length)}`,
    { headers: { authorization: `Bearer ${e.client.getAccessToken() ?? ""}` } },
  );
  assert.equal(response.status, 200);
  return Buffer.from(await response.arrayBuffer());
}

const profile = (e: E2e) => e.world.hs.profile;

/**
 * On the homeservers admins run today (Synapse 1.120+), media uploaded by Matrix users is served
 * only through the authenticated endpoints; on old ones those endpoints answer M_UNRECOGNIZED
 * (1.67 with 400, 1.92 with 404) and the legacy ones must be used. Media goes both ways on each.
 */
for (const profile of ["synapse-current", "synapse-1.67", "synapse-1.92"] as const) {
  describe(`e2e: media on ${profile}`, function () {
    this.timeout(90_000);
    let e: E2e;
    let a: WhatsAppUser;
    let portal: string;

    before(async function () {
      e = await E2e.start("alice", { homeserverProfile: profile });
      a = await e.whatsappUser("+491702222222");
      await e.login();
      portal = await e.openChat(a);
    });
    after(async function () {
      await e?.stop();
    });

    it("a file a Matrix user sends arrives at WhatsApp intact, and one from WhatsApp arrives on Matrix", async function () {
      const data = randomBytes(300_000);
      const url = await e.upload(data, "application/octet-stream", "blob.bin");
      await e.send(portal, {
        msgtype: "m.file",
        body: "blob.bin",
        url,
        info: { mimetype: "application/octet-stream", size: data.length },
      });
      await e.received(a, "the file at A", (r) => mediaOf(r)?.["sha256"] === sha256(data));

      const back = randomBytes(200_000);
      await e.from(a, {
        type: "media",
        kind: "document",
        data: back.toString("base64"),
        mime: "application/zip",
        filename: "back.zip",
      });
      const file = await e.ghostSays(portal, "A's file", (c) => c["msgtype"] === "m.file");
      assert.deepEqual(await downloadAsClient(e, String(file.getContent()["url"])), back);
    });
  });
}
