import assert from "node:assert/strict";
import { inlineCode } from "../../src/matrix/gateway.js";

describe("bot notices", function () {
  it("`code` segments become monospace spans without their backticks", function () {
    assert.deepEqual(inlineCode("Send `login` or `help`."), {
      text: "Send login or help.",
      spans: [
        { start: 5, end: 10, style: "monospace" },
        { start: 14, end: 18, style: "monospace" },
      ],
    });
  });

  it("an unpaired backtick is kept as written", function () {
    assert.deepEqual(inlineCode("a `b` c ` d"), {
      text: "a b c ` d",
      spans: [{ start: 2, end: 3, style: "monospace" }],
    });
  });
});
