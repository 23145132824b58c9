import type { RemoteMessageId } from "../../core/network.js";
import type { BareJid } from "../../util/ids.js";
import { MAX_REPORTED_MESSAGES, type ReportedMessage } from "../codec/abuse.js";

const DEFAULT_CAPACITY = 500;

/**
 * The most recent decrypted envelopes, exactly as received, so that a report can disclose them
 * (§16.2). In memory and bounded: the core does not keep the wire form of a message, and a
 * report is almost always about something that just arrived.
 */
export class RecentEnvelopes {
  private readonly entries = new Map<string, ReportedMessage>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  remember(local: BareJid, message: ReportedMessage): void {
    const key = keyOf(local, message.from, message.originId);
    this.entries.delete(key);
    this.entries.set(key, message);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** The held envelopes among `ids` from `contact`, at most MAX_REPORTED_MESSAGES. */
  take(local: BareJid, contact: BareJid, ids: readonly RemoteMessageId[]): ReportedMessage[] {
    const out: ReportedMessage[] = [];
    for (const id of ids) {
      const entry = this.entries.get(keyOf(local, contact, id));
      if (entry !== undefined && out.length < MAX_REPORTED_MESSAGES) out.push(entry);
    }
    return out;
  }
}

const keyOf = (local: string, from: string, id: string): string => `${local}\n${from}\n${id}`;
