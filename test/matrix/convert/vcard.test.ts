import assert from "node:assert/strict";
import { summarizeVcard } from "../../../src/matrix/convert/vcard.js";

describe("matrix/convert vcard", () => {
  it("reads name, organisation, numbers and e-mail of a vCard 3.0", () => {
    const card = [
      "BEGIN:VCARD",
      "VERSION:3.0",
      "N:Example;Carol;;;",
      "FN:Carol Example",
      "ORG:Example Corp;Sales",
      "item1.TEL;TYPE=CELL:+49 170 555-0123",
      "TEL;TYPE=WORK:(030) 1234",
      "EMAIL;TYPE=INTERNET:carol@example.org",
      "END:VCARD",
    ].join("\r\n");
    assert.deepEqual(summarizeVcard(card), {
      name: "Carol Example",
      organization: "Example Corp",
      phones: ["+49 170 5550123", "(030) 1234"],
      emails: ["carol@example.org"],
    });
  });

  it("unfolds long lines, unescapes values and falls back to N without FN", () => {
    const card =
      "BEGIN:VCARD\r\nVERSION:4.0\r\nN:O\\,Brien;Dana;;;\r\nNOTE:long\r\n  line\r\nTEL;VALUE=uri:tel:+33\r\n 612345678\r\nEND:VCARD";
    assert.deepEqual(summarizeVcard(card), {
      name: "Dana O,Brien",
      phones: ["+33 612 345678"],
      emails: [],
    });
  });

  it("survives garbage and bounds what a hostile card can add", () => {
    assert.deepEqual(summarizeVcard("not a vcard at all\u0000"), { phones: [], emails: [] });
    const many = Array.from({ length: 50 }, (_, i) => `TEL:${i}`).join("\n");
    assert.equal(summarizeVcard(many).phones.length, 10);
    const long = summarizeVcard(`FN:${"x".repeat(10000)}\u0007`);
    assert.equal(long.name?.length, 256);
  });
});
