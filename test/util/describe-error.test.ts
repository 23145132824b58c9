import assert from "node:assert/strict";
import { describeError } from "../../src/util/errors.js";

describe("error descriptions in logs", function () {
  it("a thrown raw HTTP response is described by its status and error codes, not [object Object]", function () {
    const response = {
      statusCode: 404,
      body: Buffer.from(JSON.stringify({ errcode: "M_NOT_FOUND", error: "Not found" })),
    };
    assert.equal(describeError(response), "HTTP 404 M_NOT_FOUND Not found");
    assert.equal(
      describeError(new Error("download failed", { cause: { code: "ECONNRESET" } })),
      "download failed: ECONNRESET",
    );
    assert.doesNotMatch(describeError({}), /\[object Object\]/);
  });
});
