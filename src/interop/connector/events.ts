import type {
  LoginState,
  MessageReference,
  RemoteEvent,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
} from "../../core/network.js";
import type { BareJid, MessageId } from "../../util/ids.js";
import { formatInternational } from "../../util/phone.js";
import type { MessageRef } from "../codec/delivery.js";
import { toNeutral, type MediaOpener } from "../convert/index.js";
import type { EngineState, ProviderEvent } from "../provider/types.js";
import { groupEvents } from "./groups.js";

const remoteUser = (jid: BareJid): RemoteUserId => jid as string as RemoteUserId;
const remoteMessage = (id: MessageId): RemoteMessageId => id as string as RemoteMessageId;
const remoteGroup = (jid: BareJid): RemoteGroupId => jid as string as RemoteGroupId;
const groupOf = (group: BareJid | undefined): { group?: RemoteGroupId } =>
  group === undefined ? {} : { group: remoteGroup(group) };
/** Conversation events of a group carry the group (core/network.ts RemoteEvent). */
function withGroup(e: RemoteEvent, inGroup: { group?: RemoteGroupId }): RemoteEvent {
  if (inGroup.group === undefined) return e;
  switch (e.kind) {
    case "message":
    case "edit":
    case "retract":
    case "reactions":
      return { ...e, ...inGroup };
    default:
      return e;
  }
}
const reference = (ref: MessageRef): MessageReference => ({
  author: remoteUser(ref.author),
  id: remoteMessage(ref.id),
});

/** What one engine event means for one local user: the core events to report, in order. */
interface LocalEvents {
  readonly local: BareJid;
  readonly events: RemoteEvent[];
}

interface MappingContext {
  readonly openMedia: MediaOpener;
  /** Whether a JID is a group (§17); default: none is. */
  readonly isGroup?: (jid: string) => boolean;
  /** `interop.identity_change` is `hold`: an identity change stops sending to the contact. */
  readonly identityChangeHolds?: boolean;
}

/**
 * One engine event -> the core's events for the local user it concerns. Undefined for events the
 * core has no use for (`accepted`: the core stores a message when it was queued; reports received
 * about our users: logged by the connector) and for engine-wide `state`, which the connector fans
 * out to every loaded login itself.
 *
 * Every message is reported with `isRequest: true`: the core opens a request only when it has no
 * portal with the sender, which is exactly "a gatekeeper user unknown to the recipient" (§10.3).
 */
export function mapProviderEvent(
  event: ProviderEvent,
  ctx: MappingContext,
): LocalEvents | undefined {
  switch (event.kind) {
    case "message": {
      const conversion = toNeutral(
        {
          from: event.envelope.from,
          id: event.envelope.id,
          time: event.envelope.time,
          content: event.envelope.content,
        },
        {
          order: event.seq ?? event.envelope.time.getTime(),
          // In a group the request is the add itself (group-info with addedBy, §17.1).
          isRequest: event.group === undefined,
          openMedia: ctx.openMedia,
        },
      );
      const nick = conversion.nick;
      const stamp = event.stamp;
      // Every message an envelope yields (a notice beside it has an id of its own) is as new as
      // the envelope; edits and the rest carry no such flag.
      const first = event.firstHandOver === true ? { firstHandOver: true as const } : {};
      const inGroup = event.group === undefined ? {} : { group: remoteGroup(event.group) };
      const events = conversion.events
        .map((e): RemoteEvent => withGroup(e, inGroup))
        .map((e): RemoteEvent => {
          switch (e.kind) {
            case "message":
              return {
                ...e,
                ...(stamp === undefined ? {} : { serverTime: stamp }),
                ...(nick === undefined ? {} : { nick }),
                ...first,
              };
            case "edit":
            case "retract":
              return stamp === undefined ? e : { ...e, serverTime: stamp };
            default:
              return e;
          }
        });
      return { local: event.local, events };
    }
    case "delivered":
      return {
        local: event.local,
        events: [
          {
            kind: "delivered",
            ...groupOf(event.group),
            from: remoteUser(event.from),
            targets: event.refs.map(reference),
          },
        ],
      };
    case "displayed":
      return {
        local: event.local,
        events: [
          {
            kind: "read",
            ...groupOf(event.group),
            from: remoteUser(event.from),
            upTo: reference(event.ref),
          },
        ],
      };
    case "typing":
      return {
        local: event.local,
        events: [
          {
            kind: "typing",
            ...groupOf(event.group),
            from: remoteUser(event.from),
            typing: event.state === "composing",
          },
        ],
      };
    case "undecryptable":
      return {
        local: event.local,
        events: [
          {
            kind: "undecryptable",
            ...groupOf(event.group),
            from: remoteUser(event.from),
            id: remoteMessage(event.originId),
            sentAt: event.stamp ?? new Date(),
          },
        ],
      };
    case "request-accepted":
      return {
        local: event.local,
        events: [{ kind: "request-accepted", contact: remoteUser(event.contact) }],
      };
    case "identity-changed":
      return {
        local: event.local,
        events: [
          {
            kind: "identity-changed",
            contact: remoteUser(event.contact),
            verifiedMarkCleared: event.wasVerified,
            ...(ctx.identityChangeHolds === true ? { sendingHeld: true } : {}),
            changeId: event.changeId,
          },
        ],
      };
    case "send-failed":
      return {
        local: event.local,
        events: [
          {
            kind: "send-failed",
            ...groupOf(ctx.isGroup?.(event.to) === true ? event.to : undefined),
            target: { author: remoteUser(event.local), id: remoteMessage(event.originId) },
            reason: { code: event.reason, message: event.message },
          },
        ],
      };
    case "send-delayed":
      return {
        local: event.local,
        events: [
          {
            kind: "send-delayed",
            ...groupOf(ctx.isGroup?.(event.to) === true ? event.to : undefined),
            target: { author: remoteUser(event.local), id: remoteMessage(event.originId) },
            reason: { code: event.reason, message: "rate limited", retryAt: event.retryAt },
          },
        ],
      };
    case "unbound":
      // `unbind` is the answer to our own logout, which the user was already told about.
      if (event.reason === "unbind") return { local: event.local, events: [] };
      return {
        local: event.local,
        events: [
          {
            kind: "state",
            state: {
              code: "logged-out",
              message: `WhatsApp removed the link to ${formatInternational(event.phone)} (${event.reason}).`,
            },
          },
        ],
      };
    case "group-info":
    case "group-event":
      return { local: event.local, events: groupEvents(event) };
    case "accepted":
    case "report-received":
    case "state":
      return undefined;
  }
}

/** The engine's connection health as a login's state (§8.2). */
export function loginStateOf(state: EngineState): LoginState {
  switch (state.code) {
    case "ready":
      return { code: "connected", message: "Connected to WhatsApp." };
    case "stopped":
    case "connecting":
    case "hello-pending":
      return { code: "connecting", message: "Connecting to WhatsApp." };
    case "gatekeeper-offline":
    case "gatekeeper-unreachable":
      return {
        code: "gatekeeper-unreachable",
        message: `WhatsApp's interop service cannot be reached right now: ${state.message}`,
      };
    case "auth-failed":
    case "not-enlisted":
    case "version-mismatch":
      return {
        code: "unknown-error",
        message: `The bridge cannot connect to WhatsApp (${state.code}); tell the bridge's administrator.`,
      };
  }
}
