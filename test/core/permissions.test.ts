import assert from "node:assert/strict";
import { hasPermission, permissionOf } from "../../src/core/permissions.js";
import { formatInternational, isAllowedCountry } from "../../src/util/phone.js";
import { EEA_COUNTRY_CODES } from "../../src/config/schema.js";
import { matrixUserId, phoneNumber } from "../../src/util/ids.js";

// No network here: permissions come from the config alone, the same for every network.
describe("permissions", function () {
  const map = {
    "*": "none",
    "example.org": "user",
    "@boss:example.org": "admin",
    "@banned:example.org": "none",
  } as const;

  it("the most specific entry wins: user id, then server name, then '*'", function () {
    assert.equal(permissionOf(map, matrixUserId("@boss:example.org")), "admin");
    assert.equal(permissionOf(map, matrixUserId("@banned:example.org")), "none");
    assert.equal(permissionOf(map, matrixUserId("@alice:example.org")), "user");
    assert.equal(permissionOf(map, matrixUserId("@eve:evil.example")), "none");
  });

  it("a server name is matched whole, including a port", function () {
    assert.equal(
      permissionOf({ "example.org:8448": "user" }, matrixUserId("@a:example.org:8448")),
      "user",
    );
    assert.equal(
      permissionOf({ "example.org": "user" }, matrixUserId("@a:sub.example.org")),
      "none",
    );
  });

  it("admin includes user, user does not include admin", function () {
    assert.equal(hasPermission("admin", "user"), true);
    assert.equal(hasPermission("user", "admin"), false);
    assert.equal(hasPermission("none", "user"), false);
  });
});

// Phone numbers themselves (the interop identifier's formatting and country rules): nothing to
// run on a network without them.
describe("phone numbers for display and login", function () {
  it("sets the country code apart in international format", function () {
    assert.equal(formatInternational(phoneNumber("+491701234567")), "+49 170 1234567");
    assert.equal(formatInternational(phoneNumber("+35312345678")), "+353 123 45678");
    assert.equal(formatInternational(phoneNumber("+12025550123")), "+1 202 555 0123");
  });

  it("the EEA default admits German and Irish numbers and refuses US and Swiss ones", function () {
    const eea = [...EEA_COUNTRY_CODES];
    assert.equal(isAllowedCountry(phoneNumber("+491701234567"), eea), true);
    assert.equal(isAllowedCountry(phoneNumber("+35312345678"), eea), true);
    assert.equal(isAllowedCountry(phoneNumber("+12025550123"), eea), false);
    assert.equal(isAllowedCountry(phoneNumber("+41791234567"), eea), false);
  });
});
