import assert from "node:assert/strict";
import { MatrixRefusedError } from "../../src/core/matrix-api.js";
import { CONTENT_LIMIT_BYTES, contentBytes, fitContent } from "../../src/matrix/fit.js";

describe("every event the bridge sends fits 64 KiB", function () {
  it("content that fits is sent unchanged", function () {
    const content = {
      msgtype: "m.text",
      body: "hi",
      format: "org.matrix.custom.html",
      formatted_body: "<b>hi</b>",
    };
    assert.equal(fitContent(content), content);
  });

  it("formatted_body goes first when that is enough", function () {
    const body = "b ".repeat(20_000);
    const fitted = fitContent({
      msgtype: "m.text",
      body,
      format: "org.matrix.custom.html",
      formatted_body: "<strong>b</strong> ".repeat(20_000),
    });
    assert.deepEqual(fitted, { msgtype: "m.text", body });
  });

  it("an edit's text and its fallback are both truncated with a visible note, escapes counted", function () {
    const text = '"\\\n'.repeat(40_000);
    const fitted = fitContent({
      msgtype: "m.text",
      body: `* ${text}`,
      "m.new_content": { msgtype: "m.text", body: text },
      "m.relates_to": { rel_type: "m.replace", event_id: "$x" },
    });
    assert.ok(contentBytes(fitted) <= CONTENT_LIMIT_BYTES);
    assert.match(String(fitted["body"]), /… \[truncated: \d+ more characters\]$/);
    const inner = fitted["m.new_content"] as { body: string };
    assert.match(inner.body, /… \[truncated: \d+ more characters\]$/);
    assert.deepEqual(fitted["m.relates_to"], { rel_type: "m.replace", event_id: "$x" });
  });

  it("a content with nothing to shorten is refused as M_TOO_LARGE, permanently", function () {
    assert.throws(
      () => fitContent({ "m.relates_to": { key: "k".repeat(70_000) } }),
      (err: unknown) => err instanceof MatrixRefusedError && err.errcode === "M_TOO_LARGE",
    );
  });
});
