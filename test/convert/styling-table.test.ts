import assert from "node:assert/strict";
import { toNeutral } from "../../src/interop/convert/to-neutral.js";
import { renderStyling } from "../../src/interop/convert/styling.js";
import { htmlToNeutral } from "../../src/matrix/convert/html.js";
import { neutralToMatrix } from "../../src/matrix/convert/from-neutral.js";
import { inbound, inboundContext, onlyMessage } from "../interop/convert/helpers.js";
import { STYLING_CASES } from "./styling-cases.js";

const escapeXml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** What a Matrix user sees of a WhatsApp body, through both converters as the bridge runs them. */
function whatsAppToMatrix(wa: string): { body: string; html: string | undefined } {
  const event = onlyMessage(
    toNeutral(
      inbound(`<body xmlns='urn:interop:content:0'>${escapeXml(wa)}</body>`),
      inboundContext(),
    ).events,
  );
  assert.equal(event.content.type, "text");
  const content = neutralToMatrix(event.content) as { body: string; formatted_body?: string };
  return { body: content.body, html: content.formatted_body };
}

describe("styling table: WhatsApp §13.1 <-> Matrix HTML, one table for both directions", function () {
  for (const c of STYLING_CASES) {
    if (c.direction !== "m2w") {
      it(`WhatsApp -> Matrix: ${c.name}`, function () {
        const seen = whatsAppToMatrix(c.wa);
        assert.equal(seen.html, c.html);
        assert.equal(seen.body, c.body ?? c.wa);
      });
    }
    if (c.direction !== "w2m") {
      it(`Matrix -> WhatsApp: ${c.name}`, function () {
        const neutral = c.html === undefined ? { text: c.wa, spans: [] } : htmlToNeutral(c.html);
        assert.equal(renderStyling(neutral), c.wa);
      });
    }
  }
});
