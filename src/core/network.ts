import type {
  ContactAddress,
  MatrixUserId,
  RemoteChatId,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
} from "../util/ids.js";

/**
 * The contract between the network-independent core (portals, ghosts, logins, commands, message
 * mapping) and a network connector (the interop connector in src/interop/, the loopback network
 * in src/networks/loopback/). The core never imports from a connector; a connector never touches
 * Matrix. Shaped after mautrix
 * bridgev2: one small required interface per process (NetworkConnector) and one per login
 * (NetworkLogin); every other capability is an optional interface, detected with a type guard.
 *
 * Identifiers crossing this line are the connector's own opaque strings (`RemoteUserId`,
 * `RemoteMessageId`), so a second network can be added beside interop/ without touching the core.
 */

// The remote identifiers live in util/ids.ts so that db/ can name them without importing the core;
// they are re-exported here because they are part of this contract.
export type {
  ContactAddress,
  RemoteChatId,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
} from "../util/ids.js";

/**
 * How a network describes itself to the core: what texts call it, the prefix of bot commands in
 * portals, how its ghosts are named and what users type to name a contact. Everything in the
 * core that differs from one network to the next comes from here, so the core names no network.
 */
export interface NetworkDescription {
  /** A stable lowercase id (`whatsapp`, `loopback`): logs, metrics, protocol names. */
  readonly id: string;
  /** The network's name as users know it, used in the bot's texts. */
  readonly displayName: string;
  /** The prefix of bot commands sent in a portal (`!lo`), so they are not bridged as messages. */
  readonly commandPrefix: string;
  /**
   * The localpart of a contact's ghost; `{id}` stands for `identifier.toLocalpart(address)`. The
   * rest must be valid in a Matrix localpart (a-z, 0-9, `._=-/`).
   */
  readonly ghostLocalpartTemplate: string;
  /** The display name of a contact's ghost; `{id}` stands for `identifier.format(address)`. */
  readonly ghostDisplayNameTemplate: string;
  /** What users type and read to name a contact. */
  readonly identifier: IdentifierKind;
  /**
   * What a user must know before logging in to this network (who sees what, what the bridge can
   * read), one point each. The core numbers them and adds the choice of login flows.
   */
  readonly securityNotes: readonly string[];
  /**
   * Whether a login by handle (no address) is a name the network did not verify and shows its
   * contacts as such (interop §9.2: "Unverified"); `status` then says so. Absent: handles are the
   * network's ordinary user names.
   */
  readonly unverifiedHandles?: boolean;
  /**
   * Which of the network's users the bridge can reach, when not every one (interop: those who
   * allowed chats with third-party apps, PROTOCOL.md §10). `who` follows "contacts" ("who allow
   * chats with third-party apps"): the bot's welcome and `start-chat`'s help say it. `whyNot` is
   * the other reason an address of the network's kind cannot be reached ("its owner has not
   * allowed chats with third-party apps"). Absent: every user of the network can be reached.
   */
  readonly reachableContacts?: { readonly who: string; readonly whyNot: string };
  /**
   * What usually changes a contact's identity key on this network, after "This happens when"
   * (interop: they reinstall the app or switch phones), for the notice of an identity change.
   * Absent: the notice names no usual cause.
   */
  readonly identityChangeCauses?: string;
  /**
   * The most of a contact's latest messages a report may disclose to the network (interop: 5,
   * PROTOCOL.md §16.2). Absent: a report discloses none.
   */
  readonly reportDisclosureLimit?: number;
  /**
   * A reason, for the user, to refuse a login field's value before it is submitted (interop: a
   * number outside the allowed country codes); undefined accepts it. Pure: contacts nobody.
   */
  refuseLoginValue?(field: LoginField, value: string): string | undefined;
}

/**
 * The kind of address users type for a contact (`start-chat <address>`) and read in notices and
 * ghost names. Every method is pure.
 */
export interface IdentifierKind {
  /** What texts call one (interop: "number"; loopback: "address"). */
  readonly noun: string;
  /**
   * The argument in usage lines, without angle brackets (interop: "+number"; loopback:
   * "name@loop").
   */
  readonly argument: string;
  /** A valid example users may copy ("+491701234567"). */
  readonly example: string;
  /**
   * The URI scheme of an address in the provisioning API's `identifiers` (`tel` for phone
   * numbers: `tel:+491701234567`, as bridgev2 clients expect). Absent: the address as it is.
   */
  readonly uriScheme?: string;
  /** What a user typed, as an address; undefined when it is not one of this kind. */
  parse(input: string): ContactAddress | undefined;
  /** An address as people read it ("+49 170 1234567"). */
  format(address: ContactAddress): string;
  /** The address inside a ghost's localpart: only a-z, 0-9 and `._=-/`, reversible. */
  toLocalpart(address: ContactAddress): string;
  /** A regular expression (source, unanchored) matching exactly what `toLocalpart` returns. */
  readonly localpartPattern: string;
  /** The address a `toLocalpart` result came from; undefined for anything else. */
  fromLocalpart(localpart: string): ContactAddress | undefined;
  /**
   * The field of Matrix's third-party user lookup (`/thirdparty/user/<network id>?<name>=`), with
   * a parse as lenient as people write the address there. Default: the field is named after
   * `noun`, with `example` as placeholder, and parsed by `parse`.
   */
  readonly thirdPartyField?: ThirdPartyField;
}

/** A user field of Matrix's third-party protocol description (spec: Protocol `field_types`). */
export interface ThirdPartyField {
  readonly name: string;
  /** A regular expression a client may check input against before asking. */
  readonly regexp: string;
  readonly placeholder: string;
  parse(text: string): ContactAddress | undefined;
}

/** Connection state with a stable code for machines and text for people. Never thrown. */
export interface LoginState {
  code:
    | "connecting"
    | "connected"
    | "logged-out"
    | "gatekeeper-unreachable"
    | "bad-credentials"
    | "unknown-error";
  message: string;
}

/** A formatted message in the core's neutral model, converted to and from Matrix and the network. */
export interface NeutralText {
  /** Plain text (for Matrix `body`, for the network's own text format after conversion). */
  text: string;
  /** Inline styling as spans over `text`; empty when unstyled. */
  spans: readonly TextSpan[];
}

/** A styled range of `NeutralText.text`; offsets are UTF-16 code units (JavaScript indices). */
export interface TextSpan {
  start: number;
  end: number;
  style: "bold" | "italic" | "strikethrough" | "monospace" | "code-block" | "quote" | "link";
  url?: string;
  /**
   * How many characters at each end of the span are the network's own styling markers (XEP-0393's
   * `*`, `_`, ...), which a plain rendering keeps and a formatted rendering may drop. For a
   * `quote`, `open` counts at the start of each of its lines (the `> ` prefix of every line).
   */
  markers?: { open: number; close: number };
}

export type MediaKind = "image" | "video" | "audio" | "document";

export interface NeutralMedia {
  kind: MediaKind;
  mimeType: string;
  size: number;
  fileName?: string;
  width?: number;
  height?: number;
  durationSeconds?: number;
  voice?: boolean;
  /** 64 amplitudes 0-100 for voice notes. */
  waveform?: readonly number[];
  thumbnail?: { data: Uint8Array; width: number; height: number; mimeType: string };
  /**
   * Opens the plaintext as a stream; may be called more than once. Rejects (or the stream
   * throws) with a BridgeError whose code starts with `media-`: `media-transport` and
   * `media-timeout` may succeed later; any other `media-*` code (refused URL, failed integrity
   * check, too large) never will (see `isPermanentMediaFailure`).
   */
  open(): Promise<AsyncIterable<Uint8Array>>;
}

/** Whether a failure to open media is final for that message (retrying cannot help). */
export function isPermanentMediaFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === "string" &&
    code.startsWith("media-") &&
    code !== "media-transport" &&
    code !== "media-timeout"
  );
}

export type MessageContent =
  | { type: "text"; text: NeutralText; notice?: boolean; emote?: boolean }
  | { type: "media"; media: NeutralMedia; caption?: NeutralText }
  | {
      type: "location";
      lat: number;
      lon: number;
      accuracy?: number;
      name?: string;
      address?: string;
    }
  | { type: "contacts"; vcards: readonly string[] }
  | {
      type: "call";
      media: "audio" | "video";
      outcome: "missed" | "declined" | "ended" | "no-answer";
      durationSeconds?: number;
    }
  | { type: "unsupported"; fallback?: string };

export interface MessageReference {
  author: RemoteUserId;
  id: RemoteMessageId;
}

/**
 * Events a login reports to the core. The core answers each by storing and bridging it.
 *
 * Conversation-scoped events carry `group` when they belong to a group conversation; `from` is
 * then the member who sent it (who may be another Matrix user of this bridge: the core recognises
 * its own users' messages and never posts them twice). Every bridge user in a group receives the
 * group's events through their own login, so the same event may be reported once per such login:
 * the core stores and bridges it once (per group, author and message id).
 */
export type RemoteEvent =
  | {
      kind: "message";
      group?: RemoteGroupId;
      from: RemoteUserId;
      id: RemoteMessageId;
      /** The sender's clock: shown as the sending time. */
      sentAt: Date;
      /** The network's own acceptance time, which edit and retraction windows are measured on. */
      serverTime?: Date;
      order: number;
      /** A name the sender asserts for themselves; shown only as secondary text, never as identity. */
      nick?: string;
      content: MessageContent;
      replyTo?: MessageReference & { quote?: string };
      /** First contact from an unknown sender: shown as a message request. */
      isRequest: boolean;
      /**
       * The connector knows that this login never reported this message before, in this process
       * or an earlier one: it is the first hand-over of a message its own durable de-duplication
       * has just recorded as new (not a replay after a restart, not a retry of a failed report,
       * not a redelivery). The core then skips its look-up of the message's mapping (issue #15:
       * a statement per message). Absent, the core looks the mapping up and posts nothing
       * twice; a flag set wrongly posts the message twice. Ignored in a group, where every member
       * login reports the same message and the look-up is what posts it once.
       */
      firstHandOver?: true;
    }
  | {
      kind: "edit";
      group?: RemoteGroupId;
      from: RemoteUserId;
      target: MessageReference;
      content: MessageContent;
      order: number;
      serverTime?: Date;
    }
  | {
      kind: "retract";
      group?: RemoteGroupId;
      from: RemoteUserId;
      target: MessageReference;
      serverTime?: Date;
    }
  | {
      kind: "reactions";
      group?: RemoteGroupId;
      from: RemoteUserId;
      target: MessageReference;
      emojis: readonly string[];
    }
  | {
      kind: "delivered";
      group?: RemoteGroupId;
      from: RemoteUserId;
      targets: readonly MessageReference[];
    }
  | { kind: "read"; group?: RemoteGroupId; from: RemoteUserId; upTo: MessageReference }
  | { kind: "typing"; group?: RemoteGroupId; from: RemoteUserId; typing: boolean }
  | { kind: "request-accepted"; contact: RemoteUserId }
  | {
      kind: "identity-changed";
      contact: RemoteUserId;
      verifiedMarkCleared: boolean;
      /** The network holds messages to the contact until the user confirms the new code. */
      sendingHeld?: boolean;
      /**
       * Identifies this change. A network that reports a change again after the core failed on
       * it (issue #16: the change is retried until handled) reports the same id, and the core
       * posts one notice per id.
       */
      changeId?: string;
    }
  | {
      kind: "undecryptable";
      group?: RemoteGroupId;
      from: RemoteUserId;
      id: RemoteMessageId;
      sentAt: Date;
    }
  | { kind: "send-failed"; group?: RemoteGroupId; target: MessageReference; reason: SendFailure }
  /** Not an outcome: the network holds the message and sends it again by itself (rate limit). */
  | { kind: "send-delayed"; group?: RemoteGroupId; target: MessageReference; reason: SendFailure }
  /**
   * The group as it is now: after the login created or was added to it, and whenever the
   * connector saw a version gap and fetched it again. The core reconciles the portal (name,
   * members, admins) with it. `addedBy` is set when this login's user was added by someone else:
   * the core shows the group as a message request (accepted by joining the room).
   */
  | { kind: "group-info"; group: RemoteGroupId; info: GroupInfo; addedBy?: RemoteUserId }
  /**
   * One membership or role change, in version order. `by` is the member who made it, or null for
   * a change the network made itself (interop: the last admin left and the gatekeeper promoted
   * someone). A change whose version is not newer than the portal's is ignored by the core.
   */
  | {
      kind: "group-change";
      group: RemoteGroupId;
      version: number;
      by: RemoteUserId | null;
      change: "added" | "removed" | "left" | "promoted" | "demoted";
      members: readonly GroupMember[];
    }
  | {
      kind: "group-subject";
      group: RemoteGroupId;
      version: number;
      by: RemoteUserId | null;
      subject: string;
    }
  | { kind: "state"; state: LoginState };

/** Why the network refused or gave up on a message; shown to the user as a failure notice. */
export interface SendFailure {
  code:
    | "blocked"
    | "not-reachable"
    | "rate-limited"
    | "too-large"
    | "request-pending"
    | "timed-out"
    | "identity-unconfirmed"
    | "unsupported"
    | "internal";
  message: string;
  retryAt?: Date;
}

/**
 * The core's side, handed to every login: where a connector reports events. `report` resolves
 * once the event is durably handled (stored and bridged, or deliberately dropped): a connector acks
 * the network only after that, so a crash in between redelivers instead of losing the event.
 *
 * `report` may reject with an error whose `deferred` is `true` (a held message request, see
 * core/rate-limits.ts): the core wants the event later. The connector keeps it durably, may
 * acknowledge the network (it owns the event now), and reports it again later, at least every
 * few minutes and after every restart, until `report` resolves.
 */
export const isDeferral = (err: unknown): boolean =>
  typeof err === "object" && err !== null && (err as { deferred?: unknown }).deferred === true;

export interface CoreCallbacks {
  report(login: MatrixUserId, event: RemoteEvent): Promise<void>;
}

/**
 * A way to log in (interop: a verified phone number, or an unverified handle), as the bot's login
 * command and the provisioning API present them (mautrix's login flows and steps).
 */
export interface LoginFlow {
  id: string;
  name: string;
  description: string;
}

export interface LoginField {
  id: string;
  name: string;
  description: string;
  /** A regular expression the value must match, checked by the core before submitting. */
  pattern?: string;
  /**
   * What the value is to the core once the login completes. `address`: the user's own address on
   * the network, which the network verifies (interop: the phone number); the core checks it with
   * `identifier.parse` before submitting, records it as the login's address and frees it from
   * another user who held it. `handle`: a name the user goes by, recorded as the login's handle.
   * Absent: a value only the network uses (a code, a password).
   */
  role?: "address" | "handle";
}

export type LoginStep =
  | { type: "input"; stepId: string; instructions: string; fields: readonly LoginField[] }
  | { type: "complete"; instructions: string; login: NetworkLogin };

/** A login in progress. Each call may reject with a BridgeError whose message is for the user. */
export interface LoginProcess {
  start(): Promise<LoginStep>;
  submit(stepId: string, input: Readonly<Record<string, string>>): Promise<LoginStep>;
  cancel(): Promise<void>;
}

/** One per process. */
export interface NetworkConnector {
  /** The network's self-description. Pure and constant for the connector's lifetime. */
  describe(): NetworkDescription;
  loginFlows(): readonly LoginFlow[];
  /** Begins a login for a user who has none. */
  createLogin(user: MatrixUserId, flowId: string): LoginProcess;
  /** Starts shared resources (the component connection). May reject: the start then fails. */
  start(): Promise<void>;
  /** Stops them, after in-flight work finished. Never rejects. */
  stop(): Promise<void>;
  /** Loads an existing login at start-up or after login. Never contacts the user. */
  loadLogin(user: MatrixUserId): Promise<NetworkLogin>;
}

/**
 * Optional: loads many stored logins at once (start-up), where one `loadLogin` per user would cost
 * a query each. Same contract per user as `loadLogin`; one user's failure is that user's entry (an
 * Error), not a rejection. Rejects only when nothing could be read (the database is down): the
 * caller then treats every user as failed and retries them one by one.
 */
export interface LoginBatchLoading {
  loadLogins(users: readonly MatrixUserId[]): Promise<Map<MatrixUserId, NetworkLogin | Error>>;
}

export const isLoginBatchLoading = (
  c: NetworkConnector,
): c is NetworkConnector & LoginBatchLoading => "loadLogins" in c;

/** Reachability answer for an address: only reachable or not, nothing else is revealed. */
export type Resolution = { reachable: true; contact: RemoteUserId } | { reachable: false };

/** One per logged-in Matrix user. */
export interface NetworkLogin {
  readonly user: MatrixUserId;
  state(): LoginState;
  /**
   * Whether an address (as `describe().identifier.parse` returned it) can be reached, and as which
   * contact. May count against the network's lookup quota.
   */
  resolveAddress(address: ContactAddress): Promise<Resolution>;
  /**
   * Sends a message. Resolves once the message is durably queued for the network (not when the
   * network accepted it: acceptance or failure arrive later as events), with the id it got.
   * `idempotencyKey` (the Matrix event id) makes a repeat harmless: a second call with the same
   * key queues nothing and resolves with the first call's id, so that a Matrix event handled
   * again after a crash (queued, but its mapping not yet stored) is not sent twice.
   */
  sendMessage(
    to: RemoteChatId,
    content: MessageContent,
    replyTo?: MessageReference & { quote?: string },
    idempotencyKey?: string,
  ): Promise<RemoteMessageId>;
  /** Logs out at the network and deletes every key of this login. */
  logout(): Promise<void>;
}

export interface EditCapable {
  sendEdit(
    to: RemoteChatId,
    target: RemoteMessageId,
    content: MessageContent,
  ): Promise<RemoteMessageId>;
  /**
   * How long after the original an edit counts, in ms, by the network's current rules (interop:
   * `edit-window-seconds`, §13.6). The core refuses later edits of the user's messages with a
   * notice and ignores later edits from contacts.
   */
  editWindowMs(): number;
}
export interface RetractCapable {
  sendRetract(to: RemoteChatId, target: RemoteMessageId): Promise<RemoteMessageId>;
  /** As `editWindowMs`, for deletions for everyone (`retract-window-seconds`, §13.7). */
  retractWindowMs(): number;
}
export interface ReactionCapable {
  /** Sends the user's complete reaction set for the target (empty removes all). */
  sendReactions(
    to: RemoteChatId,
    target: MessageReference,
    emojis: readonly string[],
  ): Promise<void>;
}
export interface ReceiptCapable {
  sendRead(to: RemoteChatId, upTo: MessageReference): Promise<void>;
}
export interface TypingCapable {
  sendTyping(to: RemoteChatId, typing: boolean): Promise<void>;
}
export interface BlockCapable {
  block(contact: RemoteUserId): Promise<void>;
  unblock(contact: RemoteUserId): Promise<void>;
}
export interface ReportCapable {
  report(
    contact: RemoteUserId,
    reason: "spam" | "phishing" | "abuse" | "impersonation" | "other",
    disclose: readonly RemoteMessageId[],
    block: boolean,
  ): Promise<void>;
}
/**
 * Safety numbers and the "verified" mark. The network owns the mark (docs/core.md, "Verified
 * contacts"): it is a property of the contact's identity key, set only while that key is the one
 * compared and cleared by the network in the same write that records a new key, so the core keeps
 * no copy that an identity change would have to reset.
 */
export interface SafetyNumberCapable {
  safetyNumber(
    contact: RemoteUserId,
  ): Promise<{ digits: string; scannable: Uint8Array; verified: boolean }>;
  /**
   * Marks the contact verified if `compared` (the digits the user was shown and compared) is still
   * their safety number; otherwise refuses with a BridgeError `identity-changed`, so a key that
   * changed between showing and confirming is never the one marked.
   */
  markVerified(contact: RemoteUserId, compared: string): Promise<void>;
  /** The contacts marked verified whose identity has not changed since (one read, for lists). */
  verifiedContacts(): Promise<ReadonlySet<RemoteUserId>>;
}

/** A member of a group as the network reports it. */
export interface GroupMember {
  id: RemoteUserId;
  admin: boolean;
  /**
   * How the member is shown (interop: the phone number of a gatekeeper user; for a user of another
   * provider, the user part with a label naming the provider's domain). Never a name the member
   * chose: names and pictures are not shared.
   */
  displayName: string;
}

export interface GroupInfo {
  id: RemoteGroupId;
  subject: string;
  /** Increases with every change (interop §17.2); a gap means events were missed. */
  version: number;
  members: readonly GroupMember[];
}

/** A participant the network would not add, and why (interop §17.1 `<rejected>`). */
export interface GroupRejection {
  id: RemoteUserId;
  reason: "not-reachable" | "refused";
}

/**
 * Groups (interop §17). The `to` of every send method of the login and its capabilities may then
 * be a RemoteGroupId. Management calls resolve with the group as it is after the change; they
 * reject with a BridgeError whose code is `group-not-admin`, `group-not-member`, `group-full`,
 * `rate-limited` (with `retryAt` when known) or `network-unavailable`, and whose message is for
 * the user. Changes a login makes itself are also reported back as events (`group-change`,
 * `group-subject`), which the core treats as idempotent.
 */
export interface GroupCapable {
  /** This login's own id at the network, as it appears in member lists and `from`. */
  selfId(): RemoteUserId;
  maxGroupSize(): number;
  createGroup(
    subject: string,
    members: readonly RemoteUserId[],
  ): Promise<{ info: GroupInfo; rejected: readonly GroupRejection[] }>;
  groupInfo(group: RemoteGroupId): Promise<GroupInfo>;
  addGroupMembers(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
  ): Promise<{ info: GroupInfo; rejected: readonly GroupRejection[] }>;
  removeGroupMembers(group: RemoteGroupId, members: readonly RemoteUserId[]): Promise<GroupInfo>;
  setGroupAdmins(
    group: RemoteGroupId,
    members: readonly RemoteUserId[],
    admin: boolean,
  ): Promise<GroupInfo>;
  setGroupSubject(group: RemoteGroupId, subject: string): Promise<GroupInfo>;
  leaveGroup(group: RemoteGroupId): Promise<void>;
}

export const isGroupCapable = (l: NetworkLogin): l is NetworkLogin & GroupCapable =>
  "createGroup" in l;

export const isEditCapable = (l: NetworkLogin): l is NetworkLogin & EditCapable => "sendEdit" in l;
export const isRetractCapable = (l: NetworkLogin): l is NetworkLogin & RetractCapable =>
  "sendRetract" in l;
export const isReactionCapable = (l: NetworkLogin): l is NetworkLogin & ReactionCapable =>
  "sendReactions" in l;
export const isReceiptCapable = (l: NetworkLogin): l is NetworkLogin & ReceiptCapable =>
  "sendRead" in l;
export const isTypingCapable = (l: NetworkLogin): l is NetworkLogin & TypingCapable =>
  "sendTyping" in l;
export const isBlockCapable = (l: NetworkLogin): l is NetworkLogin & BlockCapable => "block" in l;
export const isReportCapable = (l: NetworkLogin): l is NetworkLogin & ReportCapable =>
  "report" in l;
export const isSafetyNumberCapable = (l: NetworkLogin): l is NetworkLogin & SafetyNumberCapable =>
  "safetyNumber" in l;

/**
 * A connector that can name a contact's address without asking the network (interop: the number
 * is part of a gatekeeper user's JID). Without it the core takes a contact's id as its address
 * when the network's identifier kind parses it (ids that are what users type, as `alice@loop`).
 */
export interface ContactAddresses {
  /** The address of a contact; undefined when the contact has none of the network's kind. */
  addressOf(contact: RemoteUserId): ContactAddress | undefined;
}

export const hasContactAddresses = (
  c: NetworkConnector,
): c is NetworkConnector & ContactAddresses => "addressOf" in c;

/**
 * A connector that knows the contact id of an address without a lookup. Without it the core asks
 * the login's `resolveAddress` (or uses a contact it has already seen).
 */
export interface ContactDirectory {
  /** The contact id of an address. Pure: contacts nobody, counts against no quota. */
  contactForAddress(address: ContactAddress): RemoteUserId;
}

export const isContactDirectory = (c: NetworkConnector): c is NetworkConnector & ContactDirectory =>
  "contactForAddress" in c;

/**
 * A login that names its own user on the network (interop: the provider user's bare JID), so
 * references to the user's own messages carry the right author. Without it the core uses the
 * Matrix user id, which the connector then maps.
 */
export interface SelfIdentified {
  readonly self: RemoteUserId;
}

export const isSelfIdentified = (l: NetworkLogin): l is NetworkLogin & SelfIdentified =>
  "self" in l;

/**
 * A connector that can say whether its shared connection (interop: the gatekeeper session) is up,
 * for /ready and the metrics. Read synchronously from state the connector already holds; never
 * contacts the network.
 */
export interface ConnectionHealthReporting {
  connectionHealth(): { connected: boolean; code: string; message: string };
  /** Messages queued towards the network (outbox) and received but not yet reported (inbox). */
  queueDepths(): Promise<{ outbox: number; inbox: number }>;
}

export const isConnectionHealthReporting = (
  c: NetworkConnector,
): c is NetworkConnector & ConnectionHealthReporting => "connectionHealth" in c;
