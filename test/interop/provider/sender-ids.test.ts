import assert from "node:assert/strict";
import { originIdForEvent } from "../../../src/interop/provider/sender.js";
import type { BareJid } from "../../../src/util/ids.js";

describe("provider sender: origin-ids of Matrix events", function () {
  it("stay the same across versions, so that an event redelivered after an upgrade is not sent twice", function () {
    // Computed by the release before issue #15's one-shot hash; any change of the derivation
    // shows here.
    assert.equal(
      originIdForEvent("alice@matrix.bridge.example" as BareJid, "$event:example.org"),
      "08c24537-21b4-404c-a8e9-435aea95e4df",
    );
    assert.match(
      originIdForEvent("bob@matrix.bridge.example" as BareJid, "$other:example.org"),
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});
