import assert from "node:assert/strict";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import { AckBatcher, type InboxStore } from "../../../src/interop/provider/inbox.js";
import type { HelloSession } from "../../../src/interop/provider/session.js";
import { silentLogger } from "../../../src/util/log.js";

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("provider acks", function () {
  it("a burst of acks over max-ack-items is sent and recorded once each, one batch at a time", async function () {
    const sent: string[] = [];
    let recording = 0;
    let mostAtOnce = 0;
    const recorded: string[] = [];
    // A session and an inbox that take a turn of the event loop, as the socket and the database do.
    const session = {
      ready: true,
      send: async (stanza: XmlElement) => {
        await turn();
        sent.push(...[...stanza.toString().matchAll(/id=['"](st-\d+)['"]/g)].map((m) => m[1]!));
      },
    } as unknown as HelloSession;
    const inbox = {
      markAcked: async (ids: readonly string[]) => {
        recording += 1;
        mostAtOnce = Math.max(mostAtOnce, recording);
        await turn();
        recorded.push(...ids);
        recording -= 1;
      },
    } as unknown as InboxStore;
    const acks = new AckBatcher({
      session,
      domain: "bridge.example",
      inbox,
      delayMs: 1000,
      maxItems: () => 5,
      logger: silentLogger(),
    });
    // A restarted bridge acks a burst of redeliveries at once.
    const ids = Array.from({ length: 23 }, (_, i) => `st-${i}`);
    for (const id of ids) acks.add("wa.example", id);
    await acks.flush();
    acks.stop();
    assert.deepEqual([...sent].sort(), [...ids].sort(), "each stanza-id acked once");
    assert.deepEqual([...recorded].sort(), [...ids].sort(), "each recorded once");
    assert.equal(mostAtOnce, 1, "one statement at a time marks acks");
  });
});
