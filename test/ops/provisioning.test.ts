import assert from "node:assert/strict";
import { OpsWorld } from "./world.js";

const SECRET = "s".repeat(20) + "-provisioning-secret";
const MY_PHONE = "+491700000021";
const PHONE_A = "+491701111133";
const UNKNOWN = "+491709999999";

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

describe("provisioning API through the real bridge", function () {
  this.timeout(180_000);
  let world: OpsWorld;
  let base: string;

  async function call(
    method: string,
    path: string,
    token: string | undefined,
    body?: unknown,
    rawBody?: string,
  ): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
    if (body !== undefined || rawBody !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(rawBody !== undefined
        ? { body: rawBody }
        : body !== undefined
          ? { body: JSON.stringify(body) }
          : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, json: text === "" ? {} : (JSON.parse(text) as Answer["json"]) };
  }
  const mine = () => world.world.user.accessToken;

  before(async function () {
    world = await OpsWorld.start("prov", {
      config: { provisioning: { shared_secret: SECRET } },
    });
    base = `${world.bridgeUrl}/_matrix/provision/v3`;
    await world.createWhatsAppUsers(PHONE_A);
  });

  after(async function () {
    await world?.stop();
  });

  describe("authentication", function () {
    it("a request without a token is refused with M_MISSING_TOKEN", async function () {
      const answer = await call("GET", "/whoami", undefined);
      assert.equal(answer.status, 401);
      assert.equal(answer.json["errcode"], "M_MISSING_TOKEN");
    });

    it("a wrong shared secret or an unknown access token is refused with M_UNKNOWN_TOKEN", async function () {
      for (const token of [SECRET.slice(0, -1) + "x", "not-a-token", SECRET + "x"]) {
        const answer = await call(
          "GET",
          `/whoami?user_id=${encodeURIComponent(world.world.user.userId)}`,
          token,
        );
        assert.equal(answer.status, 401, token);
        assert.equal(answer.json["errcode"], "M_UNKNOWN_TOKEN");
      }
    });

    it("the shared secret acts for the user named in user_id, and requires it", async function () {
      const missing = await call("GET", "/whoami", SECRET);
      assert.equal(missing.status, 400);
      assert.equal(missing.json["errcode"], "M_MISSING_PARAM");
      const answer = await call(
        "GET",
        `/whoami?user_id=${encodeURIComponent("@someone:demo.example")}`,
        SECRET,
      );
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json["logins"], []);
    });

    it("a user's own token cannot act for another user through user_id", async function () {
      const answer = await call(
        "GET",
        `/whoami?user_id=${encodeURIComponent("@other:demo.example")}`,
        mine(),
      );
      assert.equal(answer.status, 403);
      assert.equal(answer.json["errcode"], "M_FORBIDDEN");
    });

    it("a user without permission to use the bridge is refused with M_FORBIDDEN", async function () {
      const answer = await call(
        "GET",
        `/whoami?user_id=${encodeURIComponent("@eve:elsewhere.example")}`,
        SECRET,
      );
      assert.equal(answer.status, 403);
      assert.equal(answer.json["errcode"], "M_FORBIDDEN");
    });

    it("an unknown path under the prefix answers a JSON M_UNRECOGNIZED", async function () {
      const answer = await call("GET", "/nothing-here", mine());
      assert.equal(answer.status, 404);
      assert.equal(answer.json["errcode"], "M_UNRECOGNIZED");
    });
  });

  describe("a user's journey with their own access token", function () {
    it("whoami names the network, the bot and no logins", async function () {
      const answer = await call("GET", "/whoami", mine());
      assert.equal(answer.status, 200);
      assert.equal((answer.json["network"] as Record<string, unknown>)["displayname"], "WhatsApp");
      assert.equal(answer.json["bridge_bot"], world.bot);
      assert.deepEqual(answer.json["logins"], []);
      assert.deepEqual(
        (answer.json["login_flows"] as { id: string }[]).map((f) => f.id),
        ["phone", "handle"],
      );
    });

    it("login flows come with the security warning the bot shows", async function () {
      const answer = await call("GET", "/login/flows", mine());
      assert.equal(answer.status, 200);
      assert.match(
        String(answer.json["security_warning"]),
        /End-to-end encryption ends at this bridge/,
      );
    });

    it("phone login: phone, then code, with bad input refused and the step kept", async function () {
      const start = await call("POST", "/login/start/phone", mine(), {});
      assert.equal(start.status, 200, JSON.stringify(start.json));
      assert.equal(start.json["type"], "user_input");
      const loginId = String(start.json["login_id"]);
      const fields = (start.json["user_input"] as { fields: { id: string; type: string }[] })
        .fields;
      assert.deepEqual(
        fields.map((f) => [f.id, f.type]),
        [["phone", "phone_number"]],
      );
      const stepPath = (step: string) => `/login/step/${loginId}/${step}/user_input`;

      const notJson = await call("POST", stepPath("phone"), mine(), undefined, "{not json");
      assert.equal(notJson.status, 400);
      assert.equal(notJson.json["errcode"], "M_NOT_JSON");
      const notStrings = await call("POST", stepPath("phone"), mine(), { phone: 491700000021 });
      assert.equal(notStrings.json["errcode"], "M_BAD_JSON");
      const outsideEea = await call("POST", stepPath("phone"), mine(), { phone: "+12025550123" });
      assert.equal(outsideEea.status, 400);
      assert.equal(outsideEea.json["errcode"], "M_INVALID_PARAM");
      assert.equal(outsideEea.json["retry_step"], true);
      assert.match(String(outsideEea.json["error"]), /European Economic Area/);
      const wrongStep = await call("POST", stepPath("code"), mine(), { code: "123456" });
      assert.equal(wrongStep.status, 400);
      assert.equal(wrongStep.json["errcode"], "M_BAD_STATE");
      const otherUser = await call(
        "POST",
        `${stepPath("phone")}?user_id=${encodeURIComponent("@someone:demo.example")}`,
        SECRET,
        { phone: MY_PHONE },
      );
      assert.equal(otherUser.status, 404, "another user cannot drive this login");

      const code = await call("POST", stepPath("phone"), mine(), { phone: MY_PHONE });
      assert.equal(code.status, 200, JSON.stringify(code.json));
      assert.equal(code.json["step_id"], "code");
      const wrongCode = await call("POST", stepPath("code"), mine(), { code: "000000" });
      assert.equal(wrongCode.status, 400, JSON.stringify(wrongCode.json));
      assert.equal(wrongCode.json["retry_step"], true);
      const done = await call("POST", stepPath("code"), mine(), {
        code: await world.verificationCode(MY_PHONE),
      });
      assert.equal(done.status, 200, JSON.stringify(done.json));
      assert.equal(done.json["type"], "complete");
      assert.deepEqual(done.json["complete"], { user_login_id: MY_PHONE });

      const whoami = await call("GET", "/whoami", mine());
      const logins = whoami.json["logins"] as { id: string; state: { state_event: string } }[];
      assert.equal(logins.length, 1);
      assert.equal(logins[0]?.id, MY_PHONE);
      const logins2 = await call("GET", "/logins", mine());
      assert.deepEqual(logins2.json["login_ids"], [MY_PHONE]);
      const again = await call("POST", "/login/start/phone", mine(), {});
      assert.equal(again.status, 409);
      assert.equal(again.json["errcode"], "M_BAD_STATE");
    });

    it("resolve_identifier answers a reachable number's ghost and 404 for an unknown one", async function () {
      const found = await call("GET", `/resolve_identifier/${encodeURIComponent(PHONE_A)}`, mine());
      assert.equal(found.status, 200, JSON.stringify(found.json));
      assert.equal(found.json["mxid"], `@whatsapp_${PHONE_A.slice(1)}:demo.example`);
      assert.equal(found.json["dm_room_mxid"], undefined);
      const unknown = await call(
        "GET",
        `/resolve_identifier/${encodeURIComponent(UNKNOWN)}`,
        mine(),
      );
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json["errcode"], "M_NOT_FOUND");
      const garbage = await call("GET", "/resolve_identifier/hello", mine());
      assert.equal(garbage.json["errcode"], "M_INVALID_PARAM");
    });

    it("create_dm opens the chat once (201) and then answers the same room (200)", async function () {
      const created = await call("POST", `/create_dm/${encodeURIComponent(PHONE_A)}`, mine(), {});
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const room = String(created.json["dm_room_mxid"]);
      assert.ok((await world.me.invites()).includes(room), "the user is invited to the chat");
      const again = await call("POST", `/create_dm/${encodeURIComponent(PHONE_A)}`, mine(), {});
      assert.equal(again.status, 200);
      assert.equal(again.json["dm_room_mxid"], room);
    });

    it("logout ends the login; an unknown login id is 404", async function () {
      const wrong = await call("POST", "/logout/+490000000", mine(), {});
      assert.equal(wrong.status, 404);
      const out = await call("POST", "/logout/all", mine(), {});
      assert.equal(out.status, 200);
      const whoami = await call("GET", "/whoami", mine());
      assert.deepEqual(whoami.json["logins"], []);
      const resolve = await call(
        "GET",
        `/resolve_identifier/${encodeURIComponent(PHONE_A)}`,
        mine(),
      );
      assert.equal(resolve.json["errcode"], "FI.MAU.NOT_LOGGED_IN");
    });
  });
});
