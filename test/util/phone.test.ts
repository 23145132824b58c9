import assert from "node:assert/strict";
import { callingCodeLength, formatInternational } from "../../src/util/phone.js";
import { phoneNumber } from "../../src/util/ids.js";

describe("matrix/convert phone", () => {
  it("separates a two-digit country code and the first three national digits", () => {
    assert.equal(formatInternational(phoneNumber("+491701234567")), "+49 170 1234567");
  });

  it("groups North American numbers as 3-3-4", () => {
    assert.equal(formatInternational(phoneNumber("+12025550123")), "+1 202 555 0123");
  });

  it("recognises one-, two- and three-digit calling codes", () => {
    assert.equal(formatInternational(phoneNumber("+79123456789")), "+7 912 3456789");
    assert.equal(formatInternational(phoneNumber("+447911123456")), "+44 791 1123456");
    assert.equal(formatInternational(phoneNumber("+353861234567")), "+353 861 234567");
    assert.equal(formatInternational(phoneNumber("+8801712345678")), "+880 171 2345678");
    assert.deepEqual(
      ["1", "27", "354", "420", "86", "998"].map(callingCodeLength),
      [1, 2, 3, 3, 2, 3],
    );
  });

  it("keeps a short national number in one group", () => {
    assert.equal(formatInternational(phoneNumber("+35412345")), "+354 12345");
    assert.equal(formatInternational(phoneNumber("+68312345")), "+683 12345");
  });
});
