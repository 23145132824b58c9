import assert from "node:assert/strict";
import * as abuse from "../../../src/interop/codec/abuse.js";
import * as core from "../../../src/interop/codec/core.js";
import * as discovery from "../../../src/interop/codec/discovery.js";
import * as identity from "../../../src/interop/codec/identity.js";
import {
  decodeIq,
  encodeIq,
  encodeIqError,
  encodeIqResult,
  payloadKey,
} from "../../../src/interop/codec/iq.js";
import * as keys from "../../../src/interop/codec/keys.js";
import * as media from "../../../src/interop/codec/media.js";
import { parseXml } from "../../../src/interop/codec/xml.js";
import { interopError } from "../../../src/interop/codec/errors.js";
import { deviceId } from "../../../src/util/ids.js";
import { EC, KYBER, SIG, SPEC } from "./fixtures.js";
import { assertCodecError, el, payloadOf, roundTrip } from "./helpers.js";

describe("IQ payload codecs", () => {
  describe("iq envelope", () => {
    it("splits an IQ into header and payload and swaps addresses for the answer", () => {
      const iq = decodeIq(parseXml(SPEC.helloRequest));
      assert.deepEqual(iq.header, {
        type: "get",
        id: "h1",
        from: "matrix.bridge.example",
        to: "wa.example",
      });
      assert.equal(payloadKey(iq.payload!), "{urn:interop:core:0}hello");
      const result = decodeIq(encodeIqResult(iq.header));
      assert.deepEqual(result.header, {
        type: "result",
        id: "h1",
        from: "wa.example",
        to: "matrix.bridge.example",
      });
      const error = decodeIq(
        parseXml(encodeIqError(iq.header, interopError({ name: "not-enlisted" })).toString()),
      );
      assert.equal(error.error?.condition, "not-authorized");
      assert.equal(error.error?.app?.name, "not-enlisted");
    });

    it("rejects a get without payload, two payloads, or an unknown type", () => {
      assertCodecError(() => decodeIq(el("<iq type='get' id='x'/>")));
      assertCodecError(() =>
        decodeIq(el("<iq type='set' id='x'><a xmlns='u:a'/><b xmlns='u:b'/></iq>")),
      );
      assertCodecError(() => decodeIq(el("<iq type='fetch' id='x'><a xmlns='u:a'/></iq>")));
      assertCodecError(() => decodeIq(el("<iq type='get'><a xmlns='u:a'/></iq>")));
      assertCodecError(() => decodeIq(el("<iq type='error' id='x'/>")));
    });

    it("builds stanzas with the element builder", () => {
      const iq = encodeIq({ type: "get", id: "p'1", to: "wa.example" }, core.encodePing());
      assert.equal(
        iq.toString(),
        `<iq type="get" id="p&apos;1" to="wa.example"><ping xmlns="urn:xmpp:ping"/></iq>`,
      );
    });
  });

  describe("core (§8)", () => {
    it("round-trips the hello request with its features", () => {
      const hello = roundTrip(
        payloadOf("helloRequest"),
        core.decodeHelloRequest,
        core.encodeHelloRequest,
      );
      assert.equal(hello.version, "0.2");
      assert.equal(hello.provider, "matrix-bridge-example");
      assert.deepEqual(hello.features, [
        "urn:interop:content:0#reply",
        "urn:interop:content:0#reactions",
        "urn:interop:groups:0",
      ]);
    });

    it("round-trips the hello result; unlisted limits take the defaults of §8.3", () => {
      const hello = roundTrip(
        payloadOf("helloResult"),
        core.decodeHelloResult,
        core.encodeHelloResult,
      );
      assert.equal(hello.session, "s-5f1c0e");
      assert.deepEqual(hello.mediaOrigins, ["https://wa.example"]);
      assert.equal(hello.announcedLimits["max-devices-per-user"], 5);
      const limits = core.effectiveLimits(hello);
      assert.equal(limits["max-envelope-bytes"], 32768);
      assert.equal(limits["max-receipt-items"], 50);
      assert.equal(limits["edit-window-seconds"], 900);
      assert.equal(core.limitsAreConsistent(limits), true);
      assert.equal(core.limitsAreConsistent({ ...limits, "max-devices-per-user": 6 }), false);
      const lowered = core.effectiveLimits({ announcedLimits: { "max-receipt-items": 7 } });
      assert.equal(lowered["max-receipt-items"], 7);
      assert.deepEqual(
        [...core.negotiatedFeatures(["urn:interop:groups:0", "x"], hello.features)],
        ["urn:interop:groups:0"],
      );
    });

    it("rejects a hello without provider, with a bad version, or a result without media origin", () => {
      assertCodecError(
        () => core.decodeHelloRequest(el("<hello xmlns='urn:interop:core:0' version='0.2'/>")),
        {
          path: /hello\/@provider$/,
        },
      );
      assertCodecError(() =>
        core.decodeHelloRequest(
          el("<hello xmlns='urn:interop:core:0' version='v0' provider='p'/>"),
        ),
      );
      assertCodecError(() =>
        core.decodeHelloResult(el("<hello xmlns='urn:interop:core:0' version='0.2'/>")),
      );
      assertCodecError(() =>
        core.decodeHelloResult(
          el(
            "<hello xmlns='urn:interop:core:0' version='0.2'><media-origin>https://wa.example/path</media-origin></hello>",
          ),
        ),
      );
      assertCodecError(() =>
        core.decodeHelloResult(
          el(
            "<hello xmlns='urn:interop:core:0' version='0.2'><limits><limit name='max-unacked' value='-1'/></limits><media-origin>https://wa.example</media-origin></hello>",
          ),
        ),
      );
    });

    it("reads hello-request and ping", () => {
      assert.equal(core.decodePing(payloadOf("ping")), true);
      assert.equal(core.majorOf("0.2"), 0);
      assertCodecError(() => core.decodePing(el("<ping xmlns='urn:xmpp:pong'/>")));
    });
  });

  describe("identity (§9)", () => {
    it("round-trips request-code, code-sent, confirm-code, bound", () => {
      const req = roundTrip(
        payloadOf("requestCode"),
        identity.decodeRequestCode,
        identity.encodeRequestCode,
      );
      assert.deepEqual(req, { phone: "+491709876543", channel: "sms", lang: "de" });
      const sent = roundTrip(
        payloadOf("codeSent"),
        identity.decodeCodeSent,
        identity.encodeCodeSent,
      );
      assert.equal(sent.length, 6);
      assert.equal(sent.resendAfter, 60);
      assert.equal(sent.expires.toISOString(), "2025-03-01T12:10:00.000Z");
      const confirm = roundTrip(
        payloadOf("confirmCode"),
        identity.decodeConfirmCode,
        identity.encodeConfirmCode,
      );
      assert.equal(confirm.code, "482913");
      const bound = roundTrip(payloadOf("bound"), identity.decodeBound, identity.encodeBound);
      assert.equal(bound.jid, "alice=3amatrix.bridge.example@matrix.bridge.example");
    });

    it("round-trips binding, unbind and profile", () => {
      assert.deepEqual(identity.decodeBinding(payloadOf("bindingQuery")), { phone: undefined });
      const bound = identity.decodeBinding(identity.encodeBinding("+491709876543" as never));
      assert.equal(bound.phone, "+491709876543");
      assert.equal(identity.decodeUnbind(payloadOf("unbind")), true);
      const profile = roundTrip(
        payloadOf("profile"),
        identity.decodeProfile,
        identity.encodeProfile,
      );
      assert.equal(profile.handle, "alice:matrix.bridge.example");
    });

    it("a malformed number answers bad-request with phone-invalid", () => {
      assertCodecError(
        () =>
          identity.decodeRequestCode(
            el("<request-code xmlns='urn:interop:identity:0' phone='0170 123'/>"),
          ),
        { condition: "bad-request", appCondition: "phone-invalid", path: /request-code\/@phone$/ },
      );
      assertCodecError(
        () =>
          identity.decodeConfirmCode(
            el("<confirm-code xmlns='urn:interop:identity:0' phone='+4917' code='1'/>"),
          ),
        { appCondition: "phone-invalid" },
      );
    });

    it("judges handles by the rules of §9.2", () => {
      assert.equal(identity.handleProblem("alice:matrix.bridge.example"), undefined);
      assert.equal(identity.handleProblem("agent 007"), undefined);
      assert.equal(identity.handleProblem("x".repeat(65)), "longer than 64 characters");
      assert.equal(identity.handleProblem("+alice"), "starts with +");
      assert.equal(identity.handleProblem("alice\u200Badmin"), "forbidden character");
      assert.equal(identity.handleProblem("a\u2028b"), "forbidden character");
      assert.equal(identity.handleProblem("call 01701234"), "too many digits");
      assert.equal(identity.handleProblem("a12"), "too many digits");
      assert.equal(identity.handleKey("ＡＬＩＣＥ"), identity.handleKey("alice"));
    });

    it("defaults the channel to sms and rejects unknown channels", () => {
      const req = identity.decodeRequestCode(
        el("<request-code xmlns='urn:interop:identity:0' phone='+491709876543'/>"),
      );
      assert.equal(req.channel, "sms");
      assertCodecError(() =>
        identity.decodeRequestCode(
          el("<request-code xmlns='urn:interop:identity:0' phone='+491709876543' channel='fax'/>"),
        ),
      );
    });
  });

  describe("discovery (§10.2)", () => {
    it("round-trips lookup and its result", () => {
      const req = roundTrip(
        payloadOf("lookup"),
        (e) => discovery.decodeLookupRequest(e),
        discovery.encodeLookupRequest,
      );
      assert.deepEqual(req.phones, ["+491701234567", "+491705550000"]);
      const result = roundTrip(
        payloadOf("lookupResult"),
        discovery.decodeLookupResult,
        discovery.encodeLookupResult,
      );
      assert.deepEqual(result, [
        { phone: "+491701234567", status: "reachable", jid: "491701234567@wa.example" },
        { phone: "+491705550000", status: "not-reachable" },
      ]);
    });

    it("keeps syntactically invalid numbers (they answer not-reachable) but refuses empty or oversize batches", () => {
      const req = discovery.decodeLookupRequest(
        el("<lookup xmlns='urn:interop:discovery:0'><phone>12</phone></lookup>"),
      );
      assert.deepEqual(req.phones, ["12"]);
      assertCodecError(() =>
        discovery.decodeLookupRequest(el("<lookup xmlns='urn:interop:discovery:0'/>")),
      );
      assertCodecError(() => discovery.decodeLookupRequest(payloadOf("lookup"), 1));
      assertCodecError(() =>
        discovery.decodeLookupResult(
          el(
            "<lookup xmlns='urn:interop:discovery:0'><result phone='+491701234567' status='reachable'/></lookup>",
          ),
        ),
      );
    });
  });

  describe("keys (§11)", () => {
    it("round-trips a bundle publish with one-time EC and Kyber prekeys", () => {
      const b = roundTrip(
        payloadOf("bundlePublish"),
        keys.decodePublishedBundle,
        keys.encodePublishedBundle,
      );
      assert.equal(b.device, 1);
      assert.equal(b.registration, 4711);
      assert.equal(b.reset, false);
      assert.equal(b.identity.length, 33);
      assert.equal(b.lastResortKyberPreKey.publicKey.length, 1569);
      assert.equal(b.lastResortKyberPreKey.lastResort, true);
      assert.deepEqual(
        b.preKeys?.ec.map((k) => k.id),
        [1, 2],
      );
      assert.deepEqual(
        b.preKeys?.kyber.map((k) => [k.id, k.lastResort]),
        [[2, false]],
      );
    });

    it("requires exactly one last-resort Kyber prekey in a published bundle", () => {
      const withoutLastResort = SPEC.bundlePublish.replace(" last-resort='true'", "");
      assertCodecError(() =>
        keys.decodePublishedBundle(decodeIq(parseXml(withoutLastResort)).payload!),
      );
      const noKyber = `<bundle xmlns='urn:interop:keys:0' device='1' registration='1'><identity>${EC(1)}</identity><signed-prekey id='1' signature='${SIG(1)}'>${EC(2)}</signed-prekey></bundle>`;
      assertCodecError(() => keys.decodePublishedBundle(el(noKyber)));
    });

    it("answers malformed keys with bad-key and device ids outside 1..127 with bad-request", () => {
      const shortIdentity = SPEC.bundlePublish.replace(
        `<identity>${EC(1)}</identity>`,
        "<identity>BQID</identity>",
      );
      assertCodecError(
        () => keys.decodePublishedBundle(decodeIq(parseXml(shortIdentity)).payload!),
        {
          appCondition: "bad-key",
          path: /identity\/text\(\)$/,
        },
      );
      const ecAsKyber = SPEC.bundlePublish.replace(KYBER(5), EC(5));
      assertCodecError(() => keys.decodePublishedBundle(decodeIq(parseXml(ecAsKyber)).payload!), {
        appCondition: "bad-key",
      });
      const device200 = SPEC.bundlePublish.replace("device='1'", "device='200'");
      const err = assertCodecError(() =>
        keys.decodePublishedBundle(decodeIq(parseXml(device200)).payload!),
      );
      assert.equal(err.appCondition, undefined);
      const badB64 = SPEC.bundlePublish.replace(EC(1), "BZ2yKq…");
      assertCodecError(() => keys.decodePublishedBundle(decodeIq(parseXml(badB64)).payload!), {
        condition: "bad-request",
      });
    });

    it("round-trips device list publish, fetch and results", () => {
      assert.deepEqual(keys.decodeDevicesPublish(payloadOf("devicesPublish")), [1]);
      assert.deepEqual(keys.decodeDevicesPublish(keys.encodeDevicesPublish([])), []);
      const published = keys.decodeDeviceList(payloadOf("devicesPublishResult"));
      assert.deepEqual(published, {
        jid: "alice=3amatrix.bridge.example@matrix.bridge.example",
        version: 3,
        devices: [],
      });
      assert.equal(keys.decodeDevicesFetch(payloadOf("devicesFetch")), "491701234567@wa.example");
      const list = roundTrip(
        payloadOf("devicesFetchResult"),
        keys.decodeDeviceList,
        keys.encodeDeviceList,
      );
      assert.deepEqual(list.devices, [1, 2]);
      assert.equal(list.version, 7);
      assertCodecError(() =>
        keys.decodeDevicesPublish(
          el("<devices xmlns='urn:interop:keys:0'><device id='1'/><device id='1'/></devices>"),
        ),
      );
    });

    it("round-trips bundle fetches and fetched bundles with and without a one-time prekey", () => {
      const req = roundTrip(payloadOf("bundlesFetch"), keys.decodeBundlesFetch, (v) =>
        keys.encodeBundlesFetch(v.jid, v.devices),
      );
      assert.deepEqual(req.devices, [1, 2]);
      const res = roundTrip(payloadOf("bundlesResult"), keys.decodeBundlesResult, (v) =>
        keys.encodeBundlesResult(v.jid, v.bundles),
      );
      assert.equal(res.bundles.length, 2);
      assert.equal(res.bundles[0]?.preKey?.id, 1045);
      assert.equal(res.bundles[0]?.kyberPreKey.id, 77);
      assert.equal(res.bundles[1]?.preKey, undefined);
    });

    it("round-trips prekey replenishment, counts and rotation", () => {
      const up = roundTrip(payloadOf("prekeysUpload"), keys.decodePreKeysUpload, (v) =>
        keys.encodePreKeysUpload(v.device, v),
      );
      assert.deepEqual([up.ec[0]?.id, up.kyber[0]?.id], [101, 51]);
      const counts = roundTrip(
        payloadOf("prekeysCount"),
        keys.decodePreKeyCounts,
        keys.encodePreKeyCounts,
      );
      assert.deepEqual(counts, { device: 1, ec: 64, kyber: 32 });
      assert.equal(keys.decodePreKeyCountQuery(payloadOf("prekeysQuery")), 1);
      const rot = roundTrip(payloadOf("rotate"), keys.decodeRotate, keys.encodeRotate);
      assert.equal(rot.signedPreKey.id, 2);
      assert.equal(rot.lastResortKyberPreKey?.id, 900);
      const noKyber = keys.decodeRotate(
        keys.encodeRotate({
          device: deviceId(1),
          signedPreKey: rot.signedPreKey,
          lastResortKyberPreKey: undefined,
        }),
      );
      assert.equal(noKyber.lastResortKyberPreKey, undefined);
      assertCodecError(() =>
        keys.decodePreKeysUpload(
          el(
            `<prekeys xmlns='urn:interop:keys:0' device='1'><prekey id='0'>${EC(1)}</prekey></prekeys>`,
          ),
        ),
      );
    });
  });

  describe("media slots (§14.1)", () => {
    it("round-trips the slot request and the slot", () => {
      const req = roundTrip(
        payloadOf("slotRequest"),
        media.decodeSlotRequest,
        media.encodeSlotRequest,
      );
      assert.deepEqual(req, { kind: "document", size: 1018 });
      const slot = roundTrip(payloadOf("slot"), media.decodeSlot, media.encodeSlot);
      assert.deepEqual(slot.put.headers, [{ name: "Authorization", value: "Bearer tgraT06xN4k" }]);
      assert.equal(media.originOf(slot.get.url), "https://wa.example");
    });

    it("rejects unknown kinds, size 0, foreign header names and URLs with userinfo", () => {
      assertCodecError(() =>
        media.decodeSlotRequest(
          el("<request xmlns='urn:interop:media:0' kind='sticker' size='5'/>"),
        ),
      );
      assertCodecError(() =>
        media.decodeSlotRequest(el("<request xmlns='urn:interop:media:0' kind='image' size='0'/>")),
      );
      const slot = (put: string, header = "Authorization"): string =>
        `<slot xmlns='urn:interop:media:0' expires='2025-03-01T12:10:00Z'><put url='${put}'><header name='${header}'>x</header></put><get url='https://wa.example/b/1'/></slot>`;
      assertCodecError(() => media.decodeSlot(el(slot("https://wa.example/up/1", "X-Token"))));
      assertCodecError(() => media.decodeSlot(el(slot("https://user:pw@wa.example/up/1"))));
      assertCodecError(() => media.decodeSlot(el(slot("ftp://wa.example/up/1"))));
    });
  });

  describe("abuse (§16)", () => {
    it("round-trips blocklist, block and unblock", () => {
      assert.deepEqual(abuse.decodeBlockList(payloadOf("blocklist"), "blocklist"), []);
      const list = roundTrip(
        payloadOf("blocklistResult"),
        (e) => abuse.decodeBlockList(e, "blocklist"),
        (v) => abuse.encodeBlockList("blocklist", v),
      );
      assert.deepEqual(list, ["491705550123@wa.example"]);
      assert.deepEqual(abuse.decodeBlockList(payloadOf("block"), "block"), [
        "491701234567@wa.example",
      ]);
      assert.deepEqual(abuse.decodeBlockList(payloadOf("unblock"), "unblock"), [
        "491701234567@wa.example",
      ]);
      assert.deepEqual(
        abuse.decodeBlockList(el("<unblock xmlns='urn:interop:abuse:0'/>"), "unblock"),
        [],
      );
    });

    it("requires gatekeeper-user JIDs as block items", () => {
      assertCodecError(() =>
        abuse.decodeBlockList(
          el("<block xmlns='urn:interop:abuse:0'><item jid='bob@matrix.bridge.example'/></block>"),
          "block",
        ),
      );
      assertCodecError(() =>
        abuse.decodeBlockList(el("<block xmlns='urn:interop:abuse:0'/>"), "block"),
      );
    });

    it("round-trips a report with a disclosed message and refuses more than five", () => {
      const report = roundTrip(payloadOf("report"), abuse.decodeReport, abuse.encodeReport);
      assert.equal(report.reason, "phishing");
      assert.equal(report.block, true);
      assert.equal(report.text, "Asked for my bank login.");
      assert.equal(
        Buffer.from(report.messages[0]!.envelopeData).toString("utf8"),
        "<envelope xmlns='urn:interop:envelope:0'>",
      );
      const six = abuse.encodeReport({ ...report, messages: Array(6).fill(report.messages[0]) });
      assertCodecError(() => abuse.decodeReport(six));
      assertCodecError(() =>
        abuse.decodeReport(abuse.encodeReport({ ...report, reason: "rude" as never })),
      );
    });
  });
});
