import assert from "node:assert/strict";
import { matrixUserId } from "../../../src/util/ids.js";
import {
  CodecError,
  encodeBase64,
  formatDecimal,
  formatTimestamp,
  gatekeeperUserJid,
  localpartFromMatrixUserId,
  matrixUserIdFromLocalpart,
  parseBase64,
  parseBoolean,
  parseDecimal,
  parseDeviceId,
  parseDeviceJid,
  parseGatekeeperUserJid,
  parseGroupJid,
  parseInteger,
  parseJid,
  parseMessageId,
  parsePhone,
  parseTimestamp,
  parseUserJid,
  phoneOfJid,
  tryDecode,
} from "../../../src/interop/codec/primitives.js";
import { phoneNumber } from "../../../src/util/ids.js";
import { assertCodecError } from "./helpers.js";

describe("codec primitives (§2, §5.1)", () => {
  describe("base64", () => {
    it("decodes padded RFC 4648 base64 and ignores XML whitespace inside it", () => {
      assert.deepEqual([...parseBase64("AAEC\n  Aw==", "/x")], [0, 1, 2, 3]);
      assert.deepEqual([...parseBase64(" /w==\t", "/x")], [255]);
      assert.equal(parseBase64("", "/x").length, 0);
    });

    it("rejects other alphabets, missing padding, stray characters and non-zero pad bits", () => {
      for (const bad of ["AAE", "AA-_", "AA==AA==", "A===", "AAE=x", "AAEC…", "AB==", "%%%%"]) {
        const err = assertCodecError(() => parseBase64(bad, "/iq/bundle/identity"), {
          condition: "bad-request",
        });
        assert.equal(err.path, "/iq/bundle/identity");
      }
    });

    it("encodes what it decodes", () => {
      const bytes = Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff);
      assert.deepEqual(parseBase64(encodeBase64(bytes), "/x"), bytes);
    });
  });

  describe("timestamps", () => {
    it("accepts the form without fraction and emits milliseconds", () => {
      const t = parseTimestamp("2025-03-01T12:10:00Z", "/x");
      assert.equal(formatTimestamp(t), "2025-03-01T12:10:00.000Z");
      assert.equal(
        parseTimestamp("2025-03-01T12:00:00.412Z", "/x").getTime(),
        t.getTime() - 599588,
      );
    });

    it("rejects offsets, impossible dates and other shapes", () => {
      for (const bad of [
        "2025-03-01T12:10:00+01:00",
        "2025-02-30T12:00:00Z",
        "2025-03-01 12:10:00Z",
        "2025-03-01T24:00:00Z",
        "2025-03-01",
        "",
      ]) {
        assertCodecError(() => parseTimestamp(bad, "/x"));
      }
    });
  });

  describe("numbers and booleans", () => {
    it("reads integers without sign or leading zeros, within a range", () => {
      assert.equal(parseInteger("0", "/x"), 0);
      assert.equal(parseInteger("262144", "/x"), 262144);
      for (const bad of ["-1", "+1", "01", "1.0", " 1", "", "1e3", "99999999999999999999"]) {
        assertCodecError(() => parseInteger(bad, "/x"));
      }
      assertCodecError(() => parseInteger("3", "/x", { min: 1, max: 2 }));
    });

    it("reads decimals of up to 7 fraction digits and writes them back", () => {
      assert.equal(parseDecimal("-33.8688", "/x"), -33.8688);
      assert.equal(formatDecimal(parseDecimal("52.5200066", "/x")), "52.5200066");
      assert.equal(formatDecimal(13.404954), "13.404954");
      for (const bad of ["1.", ".5", "1.12345678", "+1", "1e2", "--1"]) {
        assertCodecError(() => parseDecimal(bad, "/x"));
      }
    });

    it("accepts true, false, 1 and 0 only", () => {
      assert.equal(parseBoolean("1", "/x"), true);
      assert.equal(parseBoolean("false", "/x"), false);
      assertCodecError(() => parseBoolean("TRUE", "/x"));
      assertCodecError(() => parseBoolean("yes", "/x"));
    });
  });

  describe("identifiers", () => {
    it("accepts E.164 numbers of 8-15 digits and rejects others", () => {
      assert.equal(parsePhone("+491709876543", "/x"), "+491709876543");
      for (const bad of [
        "491709876543",
        "+0491709876",
        "+1234567",
        "+1234567890123456",
        "+49 170",
      ]) {
        assertCodecError(() => parsePhone(bad, "/x"));
      }
    });

    it("checks message ids and device ids", () => {
      assert.equal(parseMessageId("c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11", "/x").length, 36);
      assertCodecError(() => parseMessageId("a b", "/x"));
      assertCodecError(() => parseMessageId("x".repeat(65), "/x"));
      assert.equal(parseDeviceId("127", "/x"), 127);
      for (const bad of ["0", "128", "2147483648", "01"])
        assertCodecError(() => parseDeviceId(bad, "/x"));
    });
  });

  describe("JIDs", () => {
    it("splits a canonical JID into its parts", () => {
      const jid = parseJid("alice=3amatrix.bridge.example@matrix.bridge.example/1", "/x");
      assert.equal(jid.local, "alice=3amatrix.bridge.example");
      assert.equal(jid.domain, "matrix.bridge.example");
      assert.equal(jid.resource, "1");
      assert.equal(jid.bare, "alice=3amatrix.bridge.example@matrix.bridge.example");
      assert.equal(parseJid("wa.example", "/x").local, undefined);
    });

    it("rejects non-canonical JIDs: uppercase domain or localpart, a plus in a phone JID", () => {
      for (const bad of [
        "491701234567@WA.example",
        "Alice@matrix.bridge.example",
        "+491701234567@wa.example",
        "@wa.example",
        "a@b@wa.example",
        "a b@wa.example",
        "x@wa.example/",
      ]) {
        assertCodecError(() => parseUserJid(bad, "/message/@from"), { condition: "bad-request" });
      }
    });

    it("requires digits of a phone number as gatekeeper user localpart", () => {
      assert.equal(
        parseGatekeeperUserJid("491701234567@wa.example", "/x"),
        "491701234567@wa.example",
      );
      assertCodecError(() => parseGatekeeperUserJid("alice@wa.example", "/x"));
      assertCodecError(() => parseGatekeeperUserJid("491701234567@matrix.bridge.example", "/x"));
      assert.equal(gatekeeperUserJid(phoneNumber("+491701234567")), "491701234567@wa.example");
      assert.equal(phoneOfJid("491701234567@wa.example"), "+491701234567");
      assert.equal(phoneOfJid("alice@matrix.bridge.example"), undefined);
    });

    it("reads group JIDs and device JIDs", () => {
      assert.equal(parseGroupJid("k3x9q2@g.wa.example", "/x"), "k3x9q2@g.wa.example");
      assertCodecError(() => parseGroupJid("K3@g.wa.example", "/x"));
      const d = parseDeviceJid("491701234567@wa.example/2", "/x");
      assert.equal(d.device, 2);
      assert.equal(d.bare, "491701234567@wa.example");
      assertCodecError(() => parseDeviceJid("491701234567@wa.example/02", "/x"));
      assertCodecError(() => parseDeviceJid("491701234567@wa.example/phone", "/x"));
    });
  });

  describe("Matrix user id <-> provider localpart", () => {
    it("maps the spec's examples both ways", () => {
      const alice = matrixUserId("@alice:matrix.bridge.example");
      const bob = matrixUserId("@Bob:matrix.bridge.example");
      assert.equal(localpartFromMatrixUserId(alice), "alice=3amatrix.bridge.example");
      assert.equal(localpartFromMatrixUserId(bob), "=42ob=3amatrix.bridge.example");
      assert.equal(matrixUserIdFromLocalpart("=42ob=3amatrix.bridge.example", "/x"), bob);
    });

    it("round-trips non-ASCII user ids through UTF-8 escapes", () => {
      const id = matrixUserId("@zoë_ünïcode/Ω:example.org");
      const local = localpartFromMatrixUserId(id);
      assert.match(local, /^[a-z0-9._=-]+$/);
      assert.equal(matrixUserIdFromLocalpart(local, "/x"), id);
    });

    it("refuses spellings that are not the canonical encoding", () => {
      for (const bad of [
        "alice=3Amatrix.org",
        "=61lice=3amatrix.org",
        "alice=3",
        "ali ce=3ax",
        "=ff=3ax",
        "alice",
      ]) {
        assertCodecError(() => matrixUserIdFromLocalpart(bad, "/x"));
      }
    });
  });

  it("tryDecode turns a CodecError into a result and lets other errors through", () => {
    const bad = tryDecode(() => parsePhone("x", "/p"));
    assert.equal(bad.ok, false);
    assert.ok(!bad.ok && bad.error instanceof CodecError);
    assert.deepEqual(
      tryDecode(() => 5),
      { ok: true, value: 5 },
    );
    assert.throws(
      () =>
        tryDecode(() => {
          throw new TypeError("bug");
        }),
      TypeError,
    );
  });
});
