import assert from "node:assert/strict";
import { parseTransactionExtras } from "../../../src/matrix/crypto/extras.js";

describe("encryption data in appservice transactions (MSC2409, MSC3202)", function () {
  it("Synapse 1.67's spellings are read: de.sorunome to-device and device_one_time_key_counts", function () {
    const extras = parseTransactionExtras({
      "de.sorunome.msc2409.to_device": [
        {
          type: "m.room.encrypted",
          sender: "@a:x",
          content: {},
          to_user_id: "@bot:x",
          to_device_id: "BOT",
        },
      ],
      "org.matrix.msc3202.device_lists": { changed: ["@a:x"], left: ["@b:x"] },
      "org.matrix.msc3202.device_one_time_key_counts": {
        "@bot:x": { BOT: { signed_curve25519: 3 } },
      },
      "org.matrix.msc3202.device_unused_fallback_key_types": {
        "@bot:x": { BOT: ["signed_curve25519"] },
      },
    });
    assert.deepEqual(extras.toDevice, [
      {
        user: "@bot:x",
        device: "BOT",
        event: { type: "m.room.encrypted", sender: "@a:x", content: {} },
      },
    ]);
    assert.deepEqual(extras.deviceLists, { changed: ["@a:x"], left: ["@b:x"] });
    assert.deepEqual(extras.oneTimeKeyCounts, { "@bot:x": { BOT: { signed_curve25519: 3 } } });
    assert.deepEqual(extras.fallbackKeyTypes, { "@bot:x": { BOT: ["signed_curve25519"] } });
  });

  it("later spellings are read too: org.matrix to-device and device_one_time_keys_count", function () {
    const extras = parseTransactionExtras({
      "org.matrix.msc2409.to_device": [
        { type: "m.dummy", sender: "@a:x", content: {}, to_user_id: "@g:x", to_device_id: "G" },
      ],
      "org.matrix.msc3202.device_one_time_keys_count": { "@g:x": { G: { signed_curve25519: 50 } } },
    });
    assert.equal(extras.toDevice[0]?.user, "@g:x");
    assert.deepEqual(extras.oneTimeKeyCounts, { "@g:x": { G: { signed_curve25519: 50 } } });
  });

  it("malformed entries are reported and left out; the rest is kept", function () {
    const problems: string[] = [];
    const extras = parseTransactionExtras(
      {
        "de.sorunome.msc2409.to_device": [
          { type: "m.dummy", content: {} },
          "nonsense",
          { type: "m.dummy", sender: "@a:x", content: {}, to_user_id: "@g:x", to_device_id: "G" },
        ],
        "org.matrix.msc3202.device_lists": "changed",
        "org.matrix.msc3202.device_one_time_keys_count": {
          "@g:x": { G: { signed_curve25519: -1, x: 2 } },
        },
      },
      (p) => problems.push(p),
    );
    assert.equal(extras.toDevice.length, 1);
    assert.equal(problems.length, 3);
    assert.deepEqual(extras.deviceLists, { changed: [], left: [] });
    assert.deepEqual(extras.oneTimeKeyCounts, { "@g:x": { G: { x: 2 } } });
  });
});
