import assert from "node:assert/strict";
import { buildRegistration, generateTokens } from "../../src/cli/registration.js";
import { parseConfig } from "../../src/config/load.js";
import { LOOPBACK_DESCRIPTION } from "../../src/networks/loopback/description.js";

const config = parseConfig(
  "homeserver:\n  url: http://localhost:8008\n  domain: matrix.example.org\n",
  "config.yaml",
);

describe("appservice registration", function () {
  const tokens = { asToken: "as-token", hsToken: "hs-token" };
  const registration = buildRegistration(config, "http://bridge:29330", tokens);

  it("carries the tokens, the url, the bot as sender and no rate limiting", function () {
    assert.equal(registration.as_token, "as-token");
    assert.equal(registration.hs_token, "hs-token");
    assert.equal(registration.url, "http://bridge:29330");
    assert.equal(registration.sender_localpart, "whatsappbot");
    assert.equal(registration.rate_limited, false);
    assert.equal(registration.id, "whatsapp-interop");
  });

  it("asks for ephemeral events under the stable and the MSC2409 name", function () {
    assert.equal(registration.receive_ephemeral, true);
    assert.equal(registration["de.sorunome.msc2409.push_ephemeral"], true);
  });

  it("asks for the device data end-to-bridge encryption needs (MSC3202, MSC2409 to-device)", function () {
    assert.equal(registration["org.matrix.msc3202"], true);
    assert.equal(registration["org.matrix.msc2409.push_to_device"], true);
    const plaintextOnly = parseConfig(
      "homeserver:\n  url: http://localhost:8008\n  domain: matrix.example.org\n" +
        "matrix_encryption:\n  allow: false\n  default: false\n",
      "config.yaml",
    );
    const without = buildRegistration(plaintextOnly, "http://bridge:29330", tokens);
    assert.equal(without["org.matrix.msc3202"], undefined);
  });

  it("claims exactly the bot and the ghosts, exclusively", function () {
    const users = registration.namespaces.users;
    assert.ok(users.every((ns) => ns.exclusive));
    const claimed = (id: string) => users.some((ns) => new RegExp(ns.regex).test(id));
    assert.equal(claimed("@whatsappbot:matrix.example.org"), true);
    assert.equal(claimed("@whatsapp_491701234567:matrix.example.org"), true);
    assert.equal(claimed("@whatsapp_alice:matrix.example.org"), false, "only phone digits");
    assert.equal(claimed("@whatsapp_0123456789:matrix.example.org"), false, "E.164 never starts 0");
    assert.equal(claimed("@whatsapp_491701234567:matrixXexample.org"), false, "dots escaped");
    assert.equal(claimed("@alice:matrix.example.org"), false);
    assert.equal(claimed("@whatsappbot:other.org"), false);
    assert.deepEqual(registration.namespaces.rooms, []);
    assert.deepEqual(registration.namespaces.aliases, []);
  });

  it("claims the ghosts of group members without an address (`_` and the escaped remote id)", function () {
    const claimed = (id: string) =>
      registration.namespaces.users.some((ns) => new RegExp(ns.regex).test(id));
    assert.equal(claimed("@whatsapp__x7f3k=40msgr.example:matrix.example.org"), true);
    assert.equal(claimed("@whatsapp__X:matrix.example.org"), false, "escaping leaves no capitals");
  });

  it("takes the ghost namespace and protocol from the network's description", function () {
    const loop = buildRegistration(config, "http://bridge:29330", tokens, LOOPBACK_DESCRIPTION);
    const claimed = (id: string) =>
      loop.namespaces.users.some((ns) => new RegExp(ns.regex).test(id));
    assert.deepEqual(loop.protocols, ["loopback"]);
    assert.equal(claimed("@loop_alice:matrix.example.org"), true);
    assert.equal(claimed("@loop__bob=40elsewhere:matrix.example.org"), true);
    assert.equal(claimed("@whatsapp_491701234567:matrix.example.org"), false);
    assert.equal(claimed("@loop_Alice:matrix.example.org"), false, "not a loopback name");
    assert.equal(claimed("@whatsappbot:matrix.example.org"), true, "the bot stays");
  });

  it("describes WhatsApp by default, exactly as before the network described itself", function () {
    assert.deepEqual(registration.protocols, ["whatsapp"]);
    assert.deepEqual(
      registration.namespaces.users.map((ns) => ns.regex),
      [
        "^@whatsappbot:matrix\\.example\\.org$",
        "^@whatsapp_(?:[1-9][0-9]{7,14}|_[a-z0-9.=-]+):matrix\\.example\\.org$",
      ],
    );
  });

  it("fresh tokens are long, random and distinct", function () {
    const a = generateTokens();
    const b = generateTokens();
    assert.ok(a.asToken.length >= 43 && a.hsToken.length >= 43);
    assert.notEqual(a.asToken, a.hsToken);
    assert.notEqual(a.asToken, b.asToken);
    assert.match(a.asToken, /^[A-Za-z0-9_-]+$/, "URL-safe");
  });
});
