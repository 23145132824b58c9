import type { Config } from "../config/schema.js";
import type { GhostRecord, GhostRow, GhostsTable } from "../db/ghosts.js";
import { escapeBytes } from "../util/byte-escape.js";
import { BridgeError } from "../util/errors.js";
import type { ContactAddress, MatrixUserId, RoomId } from "../util/ids.js";
import { addressOfContact } from "./contact-directory.js";
import type { MatrixApi } from "./matrix-api.js";
import type { NetworkConnector, NetworkDescription, RemoteUserId } from "./network.js";

/** Bidirectional controls (embeddings, overrides, isolates, marks): they reorder what follows. */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
/** Invisible characters that hide or join text: zero-width space and non-joiner, word joiner, BOM. */
const ZERO_WIDTH = /[\u200B\u200C\u2060\uFEFF]/g;
/** A zero-width joiner not between two emoji (where it builds one, as in a family emoji). */
const LONE_ZWJ =
  /(?<!\p{Extended_Pictographic}\uFE0F?)\u200D|\u200D(?!\p{Extended_Pictographic})/gu;

/**
 * A name as it may appear in a label such as "Bob · +49 170 1234567 (Network)": without the
 * characters that would change how the label reads (an RTL override would show the address
 * reversed and the network's name first; zero-width characters make two names look alike).
 */
function labelSafe(name: string): string {
  return name.replace(BIDI_CONTROLS, "").replace(ZERO_WIDTH, "").replace(LONE_ZWJ, "").trim();
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/**
 * The Matrix puppets of the network's contacts. A ghost is named after the contact's address
 * (interop: the phone number; the gatekeeper shares numbers, never names or pictures, PROTOCOL.md
 * §9.3) with the templates of the network's description; a name the user gives a contact is shown
 * in that user's portal only, next to the address, never instead.
 */
export class GhostManager {
  private readonly ghostPattern: RegExp;
  private readonly before: string;
  private readonly after: string;
  /** The network's self-description, for the texts of everything that names ghosts. */
  readonly network: NetworkDescription;

  private readonly config: Config;
  private readonly table: GhostsTable;
  private readonly matrix: MatrixApi;
  private readonly connector: NetworkConnector;

  constructor(options: {
    config: Config;
    /** The ghosts of this network (the table is scoped to the network's id). */
    table: GhostsTable;
    matrix: MatrixApi;
    connector: NetworkConnector;
  }) {
    const { config, connector } = options;
    this.config = config;
    this.table = options.table;
    this.matrix = options.matrix;
    this.connector = connector;
    this.network = connector.describe();
    const [before, after] = this.network.ghostLocalpartTemplate.split("{id}") as [string, string];
    this.before = before;
    this.after = after;
    // An address's localpart, or `_` and an escaped id for a group member without an address.
    this.ghostPattern = new RegExp(
      `^@${escapeRegex(before)}(?:${this.network.identifier.localpartPattern}|_[a-z0-9.=-]+)${escapeRegex(after)}:${escapeRegex(config.homeserver.domain)}$`,
    );
  }

  /**
   * The Matrix id of a ghost for a network id without an address (a group member at another
   * provider): the template with `_` and the id escaped as a localpart ([a-z0-9.-] as is, any
   * other byte as `=xx`), so it never collides with an address's ghost and stays in the namespace.
   */
  mxidForRemote(id: RemoteUserId): MatrixUserId {
    const escaped = escapeBytes(id, /^[a-z0-9.-]$/);
    return `@${this.before}_${escaped}${this.after}:${this.config.homeserver.domain}` as MatrixUserId;
  }

  mxidFor(address: ContactAddress): MatrixUserId {
    const localpart = `${this.before}${this.network.identifier.toLocalpart(address)}${this.after}`;
    return `@${localpart}:${this.config.homeserver.domain}` as MatrixUserId;
  }

  /** The address of a ghost's Matrix id; undefined for any other id. */
  addressOfGhost(user: string): ContactAddress | undefined {
    if (!this.ghostPattern.test(user)) return undefined;
    const localpart = user.slice(1, user.lastIndexOf(`:${this.config.homeserver.domain}`));
    const inner = localpart.slice(this.before.length, localpart.length - this.after.length);
    return this.network.identifier.fromLocalpart(inner);
  }

  /** Whether a Matrix user id is in the bridge's ghost namespace (echo suppression). */
  isGhost(user: string): boolean {
    return this.ghostPattern.test(user);
  }

  /** An address as notices show it ("+49 170 1234567", "alice@loop"). */
  format(address: ContactAddress): string {
    return this.network.identifier.format(address);
  }

  displayNameFor(address: ContactAddress): string {
    return this.network.ghostDisplayNameTemplate.replace("{id}", this.format(address));
  }

  /** The name shown in one user's portal: their own name for the contact beside the address. */
  localDisplayName(address: ContactAddress, localName: string | null): string {
    const global = this.displayNameFor(address);
    const safe = localName === null ? "" : labelSafe(localName);
    return safe === "" ? global : `${safe} · ${global}`;
  }

  /** The address of a contact; throws `contact-unsupported` for a contact that has none. */
  addressOf(contact: RemoteUserId): ContactAddress {
    const address = addressOfContact(this.connector, contact);
    if (address === undefined) {
      throw new BridgeError(
        "contact-unsupported",
        `the contact ${contact} has no ${this.network.identifier.noun} on ${this.network.displayName}`,
      );
    }
    return address;
  }

  /** The contact of an address the bridge has already seen, if any. */
  async byAddress(address: ContactAddress): Promise<RemoteUserId | undefined> {
    return (await this.table.byAddress(address))?.contact;
  }

  /** The ghost of a contact, registered and named on the homeserver. */
  async ensure(contact: RemoteUserId): Promise<GhostRow> {
    const existing = await this.table.get(contact);
    const address = existing?.address ?? this.addressOf(contact);
    const displayName = this.displayNameFor(address);
    if (existing?.displayName === displayName) return { ...existing, address };
    const mxid = existing?.mxid ?? this.mxidFor(address);
    await this.matrix.ensureGhost(mxid, displayName);
    await this.table.upsert({ contact, address, mxid, displayName });
    const row = await this.table.get(contact);
    if (row === undefined) throw new Error(`ghost ${contact} vanished after its upsert`);
    return { ...row, address };
  }

  /**
   * The ghost of a group member. A member with an address has the same ghost as in 1:1 chats
   * (named by the template); one without (another provider's user) is named by the connector's
   * `displayName`, which carries a label naming the provider, never a name the member chose.
   */
  async ensureMember(member: { id: RemoteUserId; displayName: string }): Promise<GhostRecord> {
    const existing = await this.table.get(member.id);
    if (
      (existing?.address ?? null) !== null ||
      addressOfContact(this.connector, member.id) !== undefined
    ) {
      return this.ensure(member.id);
    }
    const displayName = labelSafe(member.displayName) || member.id;
    if (existing?.displayName === displayName) return existing;
    const mxid = existing?.mxid ?? this.mxidForRemote(member.id);
    await this.matrix.ensureGhost(mxid, displayName);
    await this.table.upsert({ contact: member.id, address: null, mxid, displayName });
    const row = await this.table.get(member.id);
    if (row === undefined) throw new Error(`ghost ${member.id} vanished after its upsert`);
    return row;
  }

  /** The network id of one of the bridge's ghosts, if the bridge has seen it. */
  async contactOfGhost(mxid: MatrixUserId): Promise<RemoteUserId | undefined> {
    return (await this.table.byMxid(mxid))?.contact;
  }

  /** How a ghost is named in the bridge's notices: its address, or the connector's label. */
  label(ghost: GhostRecord): string {
    return ghost.address !== null
      ? this.format(ghost.address)
      : (ghost.displayName ?? ghost.contact);
  }

  async setLocalName(ghost: GhostRow, room: RoomId, localName: string | null): Promise<void> {
    await this.matrix.setRoomDisplayName(
      ghost.mxid,
      room,
      this.localDisplayName(ghost.address, localName),
    );
  }
}
