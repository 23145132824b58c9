import assert from "node:assert/strict";
import type { MessageContent, MessageReference } from "../../../src/core/network.js";
import { ALL_FEATURES, FEATURE } from "../../../src/interop/codec/namespaces.js";
import {
  editElements,
  reactionElements,
  retractElements,
} from "../../../src/interop/convert/actions.js";
import { ConvertError, sendFailureOf } from "../../../src/interop/convert/errors.js";
import { interopReference, type OutboundContext } from "../../../src/interop/convert/outbound.js";
import { toNeutral } from "../../../src/interop/convert/to-neutral.js";
import type { MessageId } from "../../../src/util/ids.js";
import { ALICE, GK, inboundContext, neutralMedia, overTheWire } from "./helpers.js";

const ALL: OutboundContext = { features: new Set(ALL_FEATURES) };
const NONE: OutboundContext = { features: new Set() };
const GROUP: OutboundContext = { features: new Set(), group: true };
const ORIGINAL = "orig-1" as MessageId;
const TARGET = { id: "3EB0A91C52" as MessageId, author: GK };
const text = (t: string): MessageContent => ({ type: "text", text: { text: t, spans: [] } });

function assertConvertError(fn: () => unknown, code: string): ConvertError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConvertError, `expected ConvertError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  return caught;
}

describe("edits, retractions and reactions towards the gatekeeper (§13.5-§13.7)", () => {
  describe("edits", () => {
    it("replaces the original's body when #edit is negotiated, and reads back as an edit", () => {
      const els = editElements(ORIGINAL, text("fixed"), ALL);
      assert.deepEqual(els, [
        { kind: "replace", id: ORIGINAL },
        { kind: "body", text: "fixed" },
      ]);
      const [event] = toNeutral(overTheWire(els), inboundContext()).events;
      assert.equal(event?.kind, "edit");
      assert.deepEqual(event?.kind === "edit" && event.target, { author: ALICE, id: ORIGINAL });
    });

    it("edits a media message's caption", () => {
      const media: MessageContent = {
        type: "media",
        media: neutralMedia({ kind: "image", mimeType: "image/png", size: 1 }),
        caption: { text: "new caption", spans: [] },
      };
      assert.deepEqual(editElements(ORIGINAL, media, ALL)[1], {
        kind: "body",
        text: "new caption",
      });
    });

    it("refuses an edit without #edit in 1:1 with an error the core shows as unsupported", () => {
      const err = assertConvertError(
        () => editElements(ORIGINAL, text("x"), NONE),
        "feature-not-negotiated",
      );
      assert.equal(err.details.feature, FEATURE.edit);
      assert.equal(sendFailureOf(err).code, "unsupported");
    });

    it("refuses editing a location into something else", () => {
      const loc: MessageContent = { type: "location", lat: 1, lon: 2 };
      assertConvertError(() => editElements(ORIGINAL, loc, ALL), "unsupported-content");
    });

    it("sends an edit in a group without #edit together with a fallback", () => {
      assert.deepEqual(editElements(ORIGINAL, text("fixed"), GROUP), [
        { kind: "replace", id: ORIGINAL },
        { kind: "body", text: "fixed" },
        { kind: "fallback", text: "fixed" },
      ]);
    });
  });

  describe("retractions", () => {
    it("retracts with #retract, naming the author only for an admin's retraction", () => {
      assert.deepEqual(retractElements(ORIGINAL, ALL), [
        { kind: "retract", id: ORIGINAL, author: undefined },
      ]);
      assert.deepEqual(retractElements(ORIGINAL, ALL, GK), [
        { kind: "retract", id: ORIGINAL, author: GK },
      ]);
    });

    it("refuses without #retract in 1:1 and adds a fallback in groups", () => {
      assertConvertError(() => retractElements(ORIGINAL, NONE), "feature-not-negotiated");
      assert.deepEqual(retractElements(ORIGINAL, GROUP)[1], {
        kind: "fallback",
        text: "This message was deleted",
      });
    });
  });

  describe("reactions", () => {
    it("sends the complete set once per emoji and reads back as the same set", () => {
      const els = reactionElements(TARGET, ["👍", "❤️", "👍"], ALL);
      assert.deepEqual(els, [{ kind: "reactions", ...TARGET, reactions: ["👍", "❤️"] }]);
      const [event] = toNeutral(overTheWire(els), inboundContext()).events;
      assert.deepEqual(event, {
        kind: "reactions",
        from: ALICE,
        target: TARGET,
        emojis: ["👍", "❤️"],
      });
    });

    it("sends an empty set to remove every reaction", () => {
      assert.deepEqual(reactionElements(TARGET, [], ALL), [
        { kind: "reactions", ...TARGET, reactions: [] },
      ]);
    });

    it("accepts a multi-codepoint emoji as one reaction", () => {
      const family = "👨‍👩‍👧";
      assert.doesNotThrow(() => reactionElements(TARGET, [family, "👍🏽", "🇩🇪", "1️⃣", "❤️"], ALL));
    });

    it("refuses a reaction that is not one emoji or is above 32 bytes", () => {
      assertConvertError(() => reactionElements(TARGET, ["👍👍"], ALL), "invalid-reactions");
      assertConvertError(() => reactionElements(TARGET, ["ok"], ALL), "invalid-reactions");
      assertConvertError(() => reactionElements(TARGET, ["a"], ALL), "invalid-reactions");
      assertConvertError(() => reactionElements(TARGET, [" "], ALL), "invalid-reactions");
      const long = "👨‍👩‍👧‍👦" + "\u{E0061}".repeat(5);
      assertConvertError(() => reactionElements(TARGET, [long], ALL), "invalid-reactions");
    });

    it("refuses more reactions than max-reactions", () => {
      const ctx: OutboundContext = { ...ALL, limits: { maxReactions: 2 } };
      const err = assertConvertError(
        () => reactionElements(TARGET, ["👍", "❤️", "😂"], ctx),
        "invalid-reactions",
      );
      assert.equal(err.details.limit, 2);
    });

    it("refuses without #reactions in 1:1 and describes the reaction in a group fallback", () => {
      assertConvertError(() => reactionElements(TARGET, ["👍"], NONE), "feature-not-negotiated");
      const els = reactionElements(TARGET, ["👍"], GROUP, "Are you coming tonight?");
      assert.deepEqual(els[1], {
        kind: "fallback",
        text: "Reacted 👍 to “Are you coming tonight?”",
      });
    });
  });

  describe("references", () => {
    it("validates a core reference as an interop (id, author) pair", () => {
      const ok = { author: GK, id: "3EB0A91C52" } as unknown as MessageReference;
      assert.deepEqual(interopReference(ok), TARGET);
      for (const bad of [
        { author: "Not A Jid", id: "x" },
        { author: GK, id: "has space" },
        { author: GK, id: "x".repeat(65) },
      ]) {
        assertConvertError(
          () => interopReference(bad as unknown as MessageReference),
          "invalid-reference",
        );
      }
    });
  });
});
