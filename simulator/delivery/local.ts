import type {
  ChatState,
  Encrypted,
  MessageRef,
  RetryRequest,
} from "../../src/interop/codec/index.js";
import type { BareJid, DeviceId, MessageId, StanzaId } from "../../src/util/ids.js";

/** A stanza the gatekeeper delivers to one of its own (simulated) users. */
export type LocalDelivery = {
  /** The provider user and device that sent it. */
  from: BareJid;
  fromDevice: DeviceId;
  /** The gatekeeper user; `toDevice` for device-addressed stanzas (retries, §12.5). */
  to: BareJid;
  toDevice: DeviceId | undefined;
  originId: MessageId | undefined;
  stanzaId: StanzaId | undefined;
  stamp: Date;
  seq: number | undefined;
  /**
   * Set for group traffic (§17.4): the group JID it was sent to; `from`/`fromDevice` are then
   * the member named in `<sender>`.
   */
  group?: BareJid;
  /**
   * The durable record of this delivery (simulator/delivery/pending.ts), completed in the
   * transaction that logs the user's outcome; undefined for what is not kept (chat states).
   */
  pendingId?: number;
} & (
  | { kind: "encrypted"; encrypted: Encrypted }
  | { kind: "receipt"; receipts: MessageRef[] }
  | { kind: "displayed"; marker: MessageRef }
  | { kind: "chat-state"; state: ChatState }
  | { kind: "retry"; retry: RetryRequest }
);

/** Receives deliveries to gatekeeper users; the simulated users implement it. */
export type LocalSink = (delivery: LocalDelivery) => Promise<void>;
