import assert from "node:assert/strict";
import { mapProviderEvent } from "../../../src/interop/connector/events.js";
import { groupError, memberDisplayName } from "../../../src/interop/connector/groups.js";
import { GatekeeperError, ProviderError } from "../../../src/interop/provider/errors.js";
import { BridgeError } from "../../../src/util/errors.js";
import type { BareJid, MessageId } from "../../../src/util/ids.js";

const local = "alice=3amatrix.bridge.example@matrix.bridge.example" as BareJid;
const bob = "491701234567@wa.example" as BareJid;
const group = "k3x9q2@g.wa.example" as BareJid;
const id = "01HQ7Z3B5MC9D2K7F0R4WQ8XNT" as MessageId;
const ctx = {
  openMedia: () => async () => {
    throw new Error("no media in these tests");
  },
  isGroup: (jid: string) => jid.endsWith("@g.wa.example"),
};

describe("mapping group events and errors to the core's contract", function () {
  it("names a WhatsApp member by number and another provider's member by user part and domain", function () {
    assert.equal(memberDisplayName(bob), "+491701234567");
    assert.equal(
      memberDisplayName("carol=3aother.example@other.example"),
      "carol (via other.example)",
    );
    // A provider whose localparts are not escaped Matrix ids: the localpart as it is.
    assert.equal(memberDisplayName("dave@third.example"), "dave (via third.example)");
  });

  it("a membership event becomes one group-change; the gatekeeper's own change has by = null", function () {
    const mapped = mapProviderEvent(
      {
        kind: "group-event",
        local,
        group,
        type: "admins-promoted",
        version: 7,
        by: "g.wa.example" as BareJid,
        participants: [{ jid: bob, role: "admin" }],
        subject: undefined,
      },
      ctx,
    );
    assert.deepEqual(mapped?.events, [
      {
        kind: "group-change",
        group,
        version: 7,
        by: null,
        change: "promoted",
        members: [{ id: bob, admin: true, displayName: "+491701234567" }],
      },
    ]);
  });

  it("a subject change becomes group-subject; a send failure in a group names the group", function () {
    const subject = mapProviderEvent(
      {
        kind: "group-event",
        local,
        group,
        type: "subject-changed",
        version: 3,
        by: bob,
        participants: [],
        subject: "Trip",
      },
      ctx,
    );
    assert.deepEqual(subject?.events, [
      { kind: "group-subject", group, version: 3, by: bob, subject: "Trip" },
    ]);
    const failed = mapProviderEvent(
      {
        kind: "send-failed",
        local,
        to: group,
        originId: id,
        reason: "internal",
        message: "refused",
        eventId: undefined,
      },
      ctx,
    );
    assert.equal(failed?.events[0]?.kind === "send-failed" && failed.events[0].group, group);
  });

  it("management refusals map to group-not-admin, group-not-member, group-full, rate-limited and network-unavailable", function () {
    const refusal = (app: ConstructorParameters<typeof GatekeeperError>[1]["app"]) =>
      new GatekeeperError("group add", { type: "cancel", condition: "forbidden", app }, 0);
    const code = (err: unknown) => (groupError(err) as BridgeError).code;
    assert.equal(code(refusal({ name: "not-admin" })), "group-not-admin");
    assert.equal(code(refusal({ name: "not-member" })), "group-not-member");
    assert.equal(code(refusal({ name: "group-full" })), "group-full");
    const limited = groupError(refusal({ name: "rate-limited", scope: "lookup", retryAfter: 60 }));
    assert.ok(limited instanceof BridgeError);
    assert.equal(limited.code, "rate-limited");
    assert.equal(limited.retryAt?.getTime(), 60_000);
    assert.equal(code(new ProviderError("not-ready", "no hello")), "network-unavailable");
    assert.equal(code(new ProviderError("not-member", "not in it")), "group-not-member");
  });
});
