import assert from "node:assert/strict";
import type { Request, Response } from "express";
import { configSchema } from "../../src/config/schema.js";
import { mountThirdPartyRoutes, parsePhoneField } from "../../src/matrix/thirdparty.js";
import { LOOPBACK_DESCRIPTION } from "../../src/networks/loopback/description.js";
import { DOMAIN, startMatrixHarness, type MatrixHarness } from "./harness.js";

describe("third-party network lookups (appservice API)", function () {
  this.timeout(30_000);
  let h: MatrixHarness;
  before(async function () {
    h = await startMatrixHarness();
  });
  after(async function () {
    await h.dispose();
  });

  async function ask(path: string, token: string | null = h.hsToken) {
    const response = await fetch(`http://127.0.0.1:${h.bridge.port}${path}`, {
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
    });
    const type = response.headers.get("content-type") ?? "";
    assert.match(type, /application\/json/, `${path} answers JSON`);
    return { status: response.status, json: (await response.json()) as unknown };
  }

  for (const prefix of ["/_matrix/app/v1", "/_matrix/app/unstable", ""]) {
    it(`describes the whatsapp protocol at ${prefix || "the legacy unprefixed path"}/thirdparty/protocol/whatsapp`, async function () {
      const { status, json } = await ask(`${prefix}/thirdparty/protocol/whatsapp`);
      assert.equal(status, 200);
      const protocol = json as Record<string, unknown>;
      assert.deepEqual(protocol["user_fields"], ["phone"]);
      assert.deepEqual(protocol["location_fields"], []);
      assert.ok((protocol["field_types"] as Record<string, unknown>)["phone"]);
      assert.deepEqual(protocol["instances"], [
        { desc: "WhatsApp", fields: {}, network_id: "whatsapp" },
      ]);
    });

    it(`finds the user of a phone number at ${prefix || "the legacy unprefixed path"}`, async function () {
      const number = encodeURIComponent("+49 151 12345678");
      const { status, json } = await ask(`${prefix}/thirdparty/user/whatsapp?phone=${number}`);
      assert.equal(status, 200);
      assert.deepEqual(json, [
        {
          userid: `@whatsapp_4915112345678:${DOMAIN}`,
          protocol: "whatsapp",
          fields: { phone: "+49 151 12345678" },
        },
      ]);
      const back = await ask(
        `${prefix}/thirdparty/user?userid=${encodeURIComponent(`@whatsapp_4915112345678:${DOMAIN}`)}`,
      );
      assert.deepEqual(back.json, json);
    });
  }

  it("refuses a missing or wrong hs_token, in JSON", async function () {
    const missing = await ask("/_matrix/app/v1/thirdparty/protocol/whatsapp", null);
    assert.deepEqual(
      [missing.status, (missing.json as { errcode?: string }).errcode],
      [401, "M_MISSING_TOKEN"],
    );
    const wrong = await ask("/_matrix/app/v1/thirdparty/user/whatsapp?phone=4915112345678", "x");
    assert.deepEqual(
      [wrong.status, (wrong.json as { errcode?: string }).errcode],
      [403, "M_FORBIDDEN"],
    );
  });

  it("answers an unknown protocol, a bad number and an unknown user with 404 M_NOT_FOUND", async function () {
    for (const path of [
      "/_matrix/app/v1/thirdparty/protocol/telegram",
      "/_matrix/app/v1/thirdparty/user/whatsapp?phone=hello",
      `/_matrix/app/v1/thirdparty/user?userid=${encodeURIComponent(`@alice:${DOMAIN}`)}`,
      "/_matrix/app/v1/thirdparty/location/whatsapp",
    ]) {
      const { status, json } = await ask(path);
      assert.deepEqual(
        [status, (json as { errcode?: string }).errcode],
        [404, "M_NOT_FOUND"],
        path,
      );
    }
    const noField = await ask("/_matrix/app/v1/thirdparty/user/whatsapp");
    assert.deepEqual(
      [noField.status, (noField.json as { errcode?: string }).errcode],
      [400, "M_MISSING_PARAM"],
    );
  });

  it("reads numbers as people write them", function () {
    for (const written of [
      "+49 151 12345678",
      "+49 (151) 123-456-78",
      "004915112345678",
      "4915112345678",
    ]) {
      assert.equal(parsePhoneField(written), "+4915112345678", written);
    }
    assert.equal(parsePhoneField("12"), undefined);
  });
});

describe("third-party lookups of a network that is not phone-numbered", function () {
  type Handler = (req: Request, res: Response) => void;
  const routes = new Map<string, Handler>();
  const config = configSchema.parse({
    homeserver: { url: "http://localhost:8008", domain: "example.org" },
  });
  mountThirdPartyRoutes(
    { get: ((path: string, handler: Handler) => routes.set(path, handler)) as never },
    config,
    LOOPBACK_DESCRIPTION,
    () => false,
  );

  function call(path: string, params: Record<string, string>, query: Record<string, string>) {
    const handler = routes.get(`/_matrix/app/v1/thirdparty${path}`);
    assert.ok(handler, path);
    let status = 200;
    let body: unknown;
    const res = {
      status(code: number) {
        status = code;
        return res;
      },
      json(value: unknown) {
        body = value;
        return res;
      },
    };
    handler({ params, query } as unknown as Request, res as unknown as Response);
    return { status, body };
  }

  it("describes the network's protocol with its address field", function () {
    const { status, body } = call("/protocol/:protocol", { protocol: "loopback" }, {});
    assert.equal(status, 200);
    const protocol = body as Record<string, unknown>;
    assert.deepEqual(protocol["user_fields"], ["address"]);
    assert.deepEqual(protocol["instances"], [
      { desc: "Loopback", fields: {}, network_id: "loopback" },
    ]);
    assert.equal(call("/protocol/:protocol", { protocol: "whatsapp" }, {}).status, 404);
  });

  it("finds the ghost of an address and the address of a ghost by the network's template", function () {
    const found = call("/user/:protocol", { protocol: "loopback" }, { address: "alice@loop" });
    const user = {
      userid: "@loop_alice:example.org",
      protocol: "loopback",
      fields: { address: "alice@loop" },
    };
    assert.deepEqual(found.body, [user]);
    assert.deepEqual(call("/user", {}, { userid: "@loop_alice:example.org" }).body, [user]);
    assert.equal(
      call("/user/:protocol", { protocol: "loopback" }, { address: "+4915112345678" }).status,
      404,
    );
    assert.equal(call("/user", {}, { userid: "@whatsapp_4915112345678:example.org" }).status, 404);
  });
});
