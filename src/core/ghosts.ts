import type { Config } from "../config/schema.js";
import type { GhostRecord, GhostRow, GhostsTable } from "../db/ghosts.js";
import { BridgeError } from "../util/errors.js";
import type { MatrixUserId, PhoneNumber, RoomId } from "../util/ids.js";
import { phoneOfContact } from "./contact-directory.js";
import type { MatrixApi } from "./matrix-api.js";
import type { NetworkConnector, RemoteUserId } from "./network.js";
import { formatInternational } from "./phone-format.js";

/** Bidirectional controls (embeddings, overrides, isolates, marks): they reorder what follows. */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
/** Invisible characters that hide or join text: zero-width space and non-joiner, word joiner, BOM. */
const ZERO_WIDTH = /[\u200B\u200C\u2060\uFEFF]/g;
/** A zero-width joiner not between two emoji (where it builds one, as in a family emoji). */
const LONE_ZWJ =
  /(?<!\p{Extended_Pictographic}\uFE0F?)\u200D|\u200D(?!\p{Extended_Pictographic})/gu;

/**
 * A name as it may appear in a label such as "Bob · +49 170 1234567 (WhatsApp)": without the
 * characters that would change how the label reads (an RTL override would show the number
 * reversed and the network's name first; zero-width characters make two names look alike).
 */
export function labelSafe(name: string): string {
  return name.replace(BIDI_CONTROLS, "").replace(ZERO_WIDTH, "").replace(LONE_ZWJ, "").trim();
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/**
 * The Matrix puppets of WhatsApp users. The gatekeeper shares numbers, never names or pictures
 * (PROTOCOL.md §9.3), so a ghost is named after its number with the network's name; a name the
 * user gives a contact is shown in that user's portal only, next to the number, never instead.
 */
export class GhostManager {
  private readonly ghostPattern: RegExp;

  constructor(
    private readonly config: Config,
    private readonly ghosts: GhostsTable,
    private readonly matrix: MatrixApi,
    private readonly connector: NetworkConnector,
  ) {
    const [before, after] = config.appservice.ghost_localpart_template.split("{phone}") as [
      string,
      string,
    ];
    // A phone number's digits, or `_` and an escaped id for a group member without a number.
    this.ghostPattern = new RegExp(
      `^@${escapeRegex(before)}(?:[1-9][0-9]{7,14}|_[a-z0-9.=-]+)${escapeRegex(after)}:${escapeRegex(config.homeserver.domain)}$`,
    );
  }

  /**
   * The Matrix id of a ghost for a network id without a phone number (a group member at another
   * provider): the template with `_` and the id escaped as a localpart ([a-z0-9.-] as is, any
   * other byte as `=xx`), so it never collides with a number's ghost and stays in the namespace.
   */
  mxidForRemote(id: RemoteUserId): MatrixUserId {
    let escaped = "";
    for (const byte of Buffer.from(id, "utf8")) {
      const ch = String.fromCharCode(byte);
      escaped += /[a-z0-9.-]/.test(ch) ? ch : `=${byte.toString(16).padStart(2, "0")}`;
    }
    const localpart = this.config.appservice.ghost_localpart_template.replace(
      "{phone}",
      `_${escaped}`,
    );
    return `@${localpart}:${this.config.homeserver.domain}` as MatrixUserId;
  }

  mxidFor(phone: PhoneNumber): MatrixUserId {
    const localpart = this.config.appservice.ghost_localpart_template.replace(
      "{phone}",
      phone.slice(1),
    );
    return `@${localpart}:${this.config.homeserver.domain}` as MatrixUserId;
  }

  /** The number of a ghost's Matrix id; undefined for any other id. */
  phoneOfGhost(user: string): PhoneNumber | undefined {
    if (!this.ghostPattern.test(user)) return undefined;
    const [before] = this.config.appservice.ghost_localpart_template.split("{phone}") as [string];
    const digits = /^[1-9][0-9]{7,14}/.exec(user.slice(1 + before.length))?.[0];
    return digits === undefined ? undefined : (`+${digits}` as PhoneNumber);
  }

  /** Whether a Matrix user id is in the bridge's ghost namespace (echo suppression). */
  isGhost(user: string): boolean {
    return this.ghostPattern.test(user);
  }

  displayNameFor(phone: PhoneNumber): string {
    return this.config.appservice.ghost_display_name_template.replace(
      "{phone}",
      formatInternational(phone),
    );
  }

  /** The name shown in one user's portal: their own name for the contact beside the number. */
  localDisplayName(phone: PhoneNumber, localName: string | null): string {
    const global = this.displayNameFor(phone);
    const safe = localName === null ? "" : labelSafe(localName);
    return safe === "" ? global : `${safe} · ${global}`;
  }

  phoneOf(contact: RemoteUserId): PhoneNumber {
    const phone = phoneOfContact(this.connector, contact);
    if (phone === undefined) {
      throw new BridgeError("contact-unsupported", `the contact ${contact} has no phone number`);
    }
    return phone;
  }

  /** The contact of a number the bridge has already seen, if any. */
  async byPhone(phone: PhoneNumber): Promise<RemoteUserId | undefined> {
    return (await this.ghosts.byPhone(phone))?.contact;
  }

  /** The ghost of a contact, registered and named on the homeserver. */
  async ensure(contact: RemoteUserId): Promise<GhostRow> {
    const existing = await this.ghosts.get(contact);
    const phone = existing?.phone ?? this.phoneOf(contact);
    const displayName = this.displayNameFor(phone);
    if (existing?.displayName === displayName) return { ...existing, phone };
    const mxid = existing?.mxid ?? this.mxidFor(phone);
    await this.matrix.ensureGhost(mxid, displayName);
    await this.ghosts.upsert({ contact, phone, mxid, displayName });
    const row = await this.ghosts.get(contact);
    if (row === undefined) throw new Error(`ghost ${contact} vanished after its upsert`);
    return { ...row, phone };
  }

  /**
   * The ghost of a group member. A member with a phone number has the same ghost as in 1:1 chats
   * (named by the template); one without (another provider's user) is named by the connector's
   * `displayName`, which carries a label naming the provider, never a name the member chose.
   */
  async ensureMember(member: { id: RemoteUserId; displayName: string }): Promise<GhostRecord> {
    const existing = await this.ghosts.get(member.id);
    if (
      (existing?.phone ?? null) !== null ||
      phoneOfContact(this.connector, member.id) !== undefined
    ) {
      return this.ensure(member.id);
    }
    const displayName = labelSafe(member.displayName) || member.id;
    if (existing?.displayName === displayName) return existing;
    const mxid = existing?.mxid ?? this.mxidForRemote(member.id);
    await this.matrix.ensureGhost(mxid, displayName);
    await this.ghosts.upsert({ contact: member.id, phone: null, mxid, displayName });
    const row = await this.ghosts.get(member.id);
    if (row === undefined) throw new Error(`ghost ${member.id} vanished after its upsert`);
    return row;
  }

  /** The network id of one of the bridge's ghosts, if the bridge has seen it. */
  async contactOfGhost(mxid: MatrixUserId): Promise<RemoteUserId | undefined> {
    return (await this.ghosts.byMxid(mxid))?.contact;
  }

  /** How a ghost is named in the bridge's notices: its number, or the connector's label. */
  labelOf(ghost: GhostRecord): string {
    return ghost.phone !== null
      ? formatInternational(ghost.phone)
      : (ghost.displayName ?? ghost.contact);
  }

  async setLocalName(ghost: GhostRow, room: RoomId, localName: string | null): Promise<void> {
    await this.matrix.setRoomDisplayName(
      ghost.mxid,
      room,
      this.localDisplayName(ghost.phone, localName),
    );
  }
}
