/** Messages between the benchmark (bench/flows.ts) and its world process (bench/world-child.ts). */
import type { EnlistedProvider } from "../simulator/config.js";
import type { AppserviceRegistration } from "../test/homeserver/index.js";

export interface WorldPortal {
  readonly room: string;
  /** The WhatsApp side of the portal: a simulated user. */
  readonly phone: string;
  readonly jid: string;
}

export interface SentRecord {
  readonly seq: number;
  readonly originId: string;
}

export type ChildRequest =
  | {
      type: "start";
      domain: string;
      registration: AppserviceRegistration;
      provider: EnlistedProvider;
      adminToken: string;
    }
  | {
      type: "setup";
      contacts: number;
      botUserId: string;
      componentDomain: string;
      /** The portals are Megolm-encrypted: the user has a device of its own (bench/user-device.ts). */
      encrypted: boolean;
    }
  /** Megolm-encrypts texts as the user's device, per portal, before a run (not timed). */
  | { type: "encrypt"; texts: { room: string; text: string }[] }
  /** Decrypts, as the user's device, the portal events whose text starts with `marker`. */
  | { type: "verify"; marker: string; portals: readonly WorldPortal[] }
  | {
      type: "w2m";
      count: number;
      /** Messages per second; 0 sends them all at once. */
      rate: number;
      marker: string;
      myJid: string;
      portals: readonly WorldPortal[];
    }
  | { type: "stop" };

export type ChildReply =
  | { type: "hello" }
  | { type: "started"; hsUrl: string; service: string }
  | { type: "ready"; matrixUserId: string; myJid: string; portals: WorldPortal[] }
  | { type: "w2m-done"; sent: SentRecord[]; errors: number; durationMs: number }
  | { type: "encrypted"; contents: Record<string, unknown>[] }
  | { type: "verified"; decrypted: number; undecryptable: number }
  | { type: "stopped" }
  | { type: "error"; message: string };
