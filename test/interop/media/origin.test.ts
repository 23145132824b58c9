import assert from "node:assert/strict";
import { MediaUrlError, type UrlRefusal } from "../../../src/interop/media/errors.js";
import {
  checkMediaUrl,
  checkUploadSlot,
  type UploadSlot,
} from "../../../src/interop/media/origin.js";

const policy = { origins: ["https://wa.example", "https://media.wa.example:8443"] };
const loopback = {
  origins: ["http://127.0.0.1:8080", "http://[::1]:8080", "http://wa.example"],
  allowInsecureLoopback: true,
};

const refusedAs = (refusal: UrlRefusal) => (err: unknown) =>
  err instanceof MediaUrlError && err.refusal === refusal && err.code === "media-url-refused";

describe("media URL checks (§14.2, §14.4)", () => {
  it("accepts a URL whose origin is announced", () => {
    assert.equal(checkMediaUrl("https://wa.example/media/b/abc", policy).pathname, "/media/b/abc");
    assert.ok(checkMediaUrl("https://media.wa.example:8443/x", policy));
  });

  it("compares the WHATWG origin: default port omitted, host lower-cased", () => {
    assert.ok(checkMediaUrl("https://wa.example:443/x", policy));
    assert.ok(checkMediaUrl("https://WA.Example/x", policy));
  });

  it("refuses another host, another port, another scheme or a subdomain", () => {
    for (const url of [
      "https://evil.example/x",
      "https://wa.example:8443/x",
      "https://media.wa.example/x",
      "https://sub.wa.example/x",
      "https://wa.example.evil.example/x",
    ]) {
      assert.throws(() => checkMediaUrl(url, policy), refusedAs("origin"), url);
    }
  });

  it("refuses userinfo, even empty or with only a user name", () => {
    for (const url of [
      "https://user:pass@wa.example/x",
      "https://user@wa.example/x",
      "https://@wa.example/x",
      "https://:@wa.example/x",
    ]) {
      assert.throws(() => checkMediaUrl(url, policy), refusedAs("userinfo"), url);
    }
  });

  it("refuses plain http outside loopback, even when that origin is announced", () => {
    assert.throws(() => checkMediaUrl("http://wa.example/x", loopback), refusedAs("insecure"));
  });

  it("refuses plain http on loopback unless the test option is on", () => {
    const { origins } = loopback;
    assert.throws(
      () => checkMediaUrl("http://127.0.0.1:8080/x", { origins }),
      refusedAs("insecure"),
    );
    assert.ok(checkMediaUrl("http://127.0.0.1:8080/x", loopback));
    assert.ok(checkMediaUrl("http://[::1]:8080/x", loopback));
    assert.throws(() => checkMediaUrl("http://localhost:8080/x", loopback), refusedAs("insecure"));
  });

  it("refuses other schemes and malformed URLs", () => {
    assert.throws(() => checkMediaUrl("ftp://wa.example/x", policy), refusedAs("scheme"));
    assert.throws(() => checkMediaUrl("data:text/plain,hi", policy), refusedAs("scheme"));
    assert.throws(() => checkMediaUrl("not a url", policy), refusedAs("malformed"));
  });

  describe("upload slots (§14.1)", () => {
    const slot = (over: Partial<UploadSlot> = {}): UploadSlot => ({
      putUrl: "https://wa.example/media/up/1",
      getUrl: "https://wa.example/media/b/1",
      headers: [{ name: "Authorization", value: "Bearer t" }],
      ...over,
    });

    it("accepts a slot whose URLs are announced and whose headers are allowed", () => {
      const checked = checkUploadSlot(
        slot({
          headers: [
            { name: "Authorization", value: "Bearer t" },
            { name: "cookie", value: "a=b" },
            { name: "Expires", value: "x" },
          ],
        }),
        policy,
      );
      assert.equal(checked.put.pathname, "/media/up/1");
    });

    it("refuses a slot whose PUT or GET URL is outside the announced origins", () => {
      assert.throws(
        () => checkUploadSlot(slot({ putUrl: "https://evil.example/up" }), policy),
        refusedAs("origin"),
      );
      assert.throws(
        () => checkUploadSlot(slot({ getUrl: "https://evil.example/b" }), policy),
        refusedAs("origin"),
      );
    });

    it("refuses a slot asking for a header other than Authorization, Cookie or Expires", () => {
      assert.throws(
        () => checkUploadSlot(slot({ headers: [{ name: "X-Extra", value: "1" }] }), policy),
        refusedAs("header"),
      );
      assert.throws(
        () =>
          checkUploadSlot(
            slot({ headers: [{ name: "Authorization", value: "a\r\nX: y" }] }),
            policy,
          ),
        refusedAs("header"),
      );
    });
  });
});
