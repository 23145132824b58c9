import type { Config } from "../config/schema.js";
import type { GhostRow, GhostsTable } from "../db/ghosts.js";
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
    this.ghostPattern = new RegExp(
      `^@${escapeRegex(before)}[1-9][0-9]{7,14}${escapeRegex(after)}:${escapeRegex(config.homeserver.domain)}$`,
    );
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
    if (existing?.displayName === displayName) return existing;
    const mxid = existing?.mxid ?? this.mxidFor(phone);
    await this.matrix.ensureGhost(mxid, displayName);
    await this.ghosts.upsert({ contact, phone, mxid, displayName });
    const row = await this.ghosts.get(contact);
    if (row === undefined) throw new Error(`ghost ${contact} vanished after its upsert`);
    return row;
  }

  async setLocalName(ghost: GhostRow, room: RoomId, localName: string | null): Promise<void> {
    await this.matrix.setRoomDisplayName(
      ghost.mxid,
      room,
      this.localDisplayName(ghost.phone, localName),
    );
  }
}
