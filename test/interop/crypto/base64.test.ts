import assert from "node:assert/strict";
import { decodeBase64 } from "../../../src/interop/crypto/base64.js";
import { InvalidBundleError } from "../../../src/interop/crypto/errors.js";

describe("strict base64", function () {
  it("accepts padded RFC 4648 base64 with XML whitespace and refuses anything else", function () {
    assert.deepEqual([...decodeBase64("AQID\n BA==")], [1, 2, 3, 4]);
    for (const bad of ["AQID BA", "AQ*D", "AQIDBA=", "-_8="]) {
      assert.throws(() => decodeBase64(bad), InvalidBundleError, bad);
    }
  });
});
