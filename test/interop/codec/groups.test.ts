import assert from "node:assert/strict";
import * as groups from "../../../src/interop/codec/groups.js";
import { classifyMessage } from "../../../src/interop/codec/message.js";
import { checkProviderMessage } from "../../../src/interop/codec/message-checks.js";
import { elementChildren } from "../../../src/interop/codec/read.js";
import { SPEC } from "./fixtures.js";
import { assertCodecError, el, payloadOf, roundTrip } from "./helpers.js";

describe("groups (§17)", () => {
  it("round-trips create and the resulting <group> with participants and rejections", () => {
    const create = roundTrip(payloadOf("groupCreate"), groups.decodeCreate, groups.encodeCreate);
    assert.deepEqual(create, {
      subject: "Trip planning",
      participants: ["491701234567@wa.example", "491705550000@wa.example"],
    });
    const info = roundTrip(payloadOf("groupCreated"), groups.decodeGroupInfo, (g) =>
      groups.encodeGroupInfo(g),
    );
    assert.equal(info.jid, "k3x9q2@g.wa.example");
    assert.equal(info.version, 1);
    assert.equal(info.created.toISOString(), "2025-03-01T12:00:00.000Z");
    assert.deepEqual(
      info.participants.map((p) => p.role),
      ["admin", "member"],
    );
    assert.deepEqual(info.rejected, [{ jid: "491705550000@wa.example", reason: "not-reachable" }]);
  });

  it("decodes info, add, subject and leave requests", () => {
    assert.deepEqual(groups.decodeGroupRequest(payloadOf("groupInfo")), { op: "info" });
    assert.deepEqual(groups.decodeGroupRequest(payloadOf("groupAdd")), {
      op: "add",
      participants: ["491705550123@wa.example"],
    });
    assert.deepEqual(groups.decodeGroupRequest(payloadOf("groupSubject")), {
      op: "subject",
      subject: "Trip planning 2025",
    });
    assert.deepEqual(groups.decodeGroupRequest(payloadOf("groupLeave")), { op: "leave" });
    for (const change of groups.GROUP_CHANGES) {
      const req = groups.decodeGroupRequest(
        groups.encodeGroupChange(change, ["491701234567@wa.example" as never]),
      );
      assert.deepEqual(req, { op: change, participants: ["491701234567@wa.example"] });
    }
    assertCodecError(() => groups.decodeGroupRequest(el("<add xmlns='urn:interop:groups:0'/>")));
    assertCodecError(() =>
      groups.decodeGroupRequest(el("<explode xmlns='urn:interop:groups:0'/>")),
    );
  });

  it("rejects a group result with a participant lacking a role or an unknown rejection reason", () => {
    const info = groups.decodeGroupInfo(payloadOf("groupCreated"));
    const noRole = groups.encodeGroupInfo({
      ...info,
      participants: [{ jid: info.creator, role: undefined }],
    });
    assertCodecError(() => groups.decodeGroupInfo(noRole), { path: /participant\/@role$/ });
    assertCodecError(() =>
      groups.decodeGroupInfo(
        groups.encodeGroupInfo({
          ...info,
          rejected: [{ jid: info.creator, reason: "bored" as never }],
        }),
      ),
    );
  });

  it("classifies a membership event and round-trips it, keeping unknown event types with their version", () => {
    const m = classifyMessage(el(SPEC.groupEvent));
    assert.ok(m.payload.kind === "notification" && m.payload.notification.type === "group-event");
    const event = m.payload.notification.event;
    assert.equal(event.type, "participants-added");
    assert.equal(event.version, 6);
    assert.deepEqual(event.participants, [{ jid: "491705550123@wa.example", role: "member" }]);
    assert.equal(m.stanzaId?.by, "g.wa.example");
    const eventEl = elementChildren(el(SPEC.groupEvent))[0]!;
    roundTrip(eventEl, groups.decodeGroupEvent, groups.encodeGroupEvent);

    const info = groups.decodeGroupInfo(payloadOf("groupCreated"));
    const created = groups.decodeGroupEvent(
      groups.encodeGroupEvent({
        type: "created",
        rawType: "created",
        by: info.creator,
        version: 1,
        participants: [],
        group: info,
        subject: undefined,
      }),
    );
    assert.deepEqual(created.group, info);
    const future = groups.decodeGroupEvent(
      el("<event xmlns='urn:interop:groups:0' type='icon-changed' by='g.wa.example' version='9'/>"),
    );
    assert.deepEqual([future.type, future.rawType, future.version], ["unknown", "icon-changed", 9]);
    assertCodecError(() =>
      groups.decodeGroupEvent(
        el("<event xmlns='urn:interop:groups:0' type='created' by='g.wa.example' version='1'/>"),
      ),
    );
  });

  it("classifies the spec's group message and checks it as a provider stanza", () => {
    const m = classifyMessage(el(SPEC.groupMessage));
    assert.ok(m.payload.kind === "encrypted");
    assert.equal(m.payload.encrypted.group?.length, 48);
    assert.doesNotThrow(() => checkProviderMessage(m, "g.wa.example"));
    assertCodecError(() => checkProviderMessage({ ...m, type: "chat" }, "g.wa.example"));
  });
});
