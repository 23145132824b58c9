import type { Room } from "../store/room.js";
import type {
  AppserviceRegistration,
  HomeserverProfile,
  NamespaceEntry,
  RoomEvent,
} from "../types.js";

interface CompiledNamespace {
  exclusive: boolean;
  regex: RegExp;
}

/**
 * Namespace regexes are anchored at the start only, as Synapse applies them (`re.match`): the spec
 * does not say, and registrations in the wild (`@_wa_.*`) rely on prefix semantics.
 */
function compile(entries: NamespaceEntry[] | undefined): CompiledNamespace[] {
  return (entries ?? []).map((e) => ({
    exclusive: e.exclusive,
    regex: new RegExp(`^(?:${e.regex})`),
  }));
}

/** One registered appservice and the namespace questions the homeserver asks about it. */
export class Appservice {
  readonly senderId: string;
  private readonly users: CompiledNamespace[];
  private readonly aliases: CompiledNamespace[];
  private readonly rooms: CompiledNamespace[];

  constructor(
    readonly registration: AppserviceRegistration,
    private readonly serverName: string,
  ) {
    this.senderId = `@${registration.sender_localpart}:${serverName}`;
    this.users = compile(registration.namespaces.users);
    this.aliases = compile(registration.namespaces.aliases);
    this.rooms = compile(registration.namespaces.rooms);
  }

  get id(): string {
    return this.registration.id;
  }

  /** Only local users can be in an appservice's user namespace (spec, Registration note). */
  ownsUser(userId: string): boolean {
    if (userId === this.senderId) return true;
    if (!userId.endsWith(`:${this.serverName}`)) return false;
    return this.users.some((n) => n.regex.test(userId));
  }

  exclusivelyOwnsUser(userId: string): boolean {
    return (
      userId.endsWith(`:${this.serverName}`) &&
      this.users.some((n) => n.exclusive && n.regex.test(userId))
    );
  }

  ownsAlias(alias: string): boolean {
    return this.aliases.some((n) => n.regex.test(alias));
  }

  exclusivelyOwnsAlias(alias: string): boolean {
    return this.aliases.some((n) => n.exclusive && n.regex.test(alias));
  }

  interestedInRoom(room: Room): boolean {
    if (this.rooms.some((n) => n.regex.test(room.id))) return true;
    const canonical = room.getState("m.room.canonical_alias")?.content["alias"];
    const aliases = [...room.aliases, ...(typeof canonical === "string" ? [canonical] : [])];
    if (aliases.some((a) => this.ownsAlias(a))) return true;
    return room.members("join").some((m) => this.ownsUser(m));
  }

  interestedInEvent(event: RoomEvent, room: Room): boolean {
    if (this.ownsUser(event.sender)) return true;
    if (
      event.type === "m.room.member" &&
      event.state_key !== undefined &&
      this.ownsUser(event.state_key)
    )
      return true;
    return this.interestedInRoom(room);
  }

  /** Synapse reads only the MSC2409 flag; the current spec reads `receive_ephemeral`. */
  wantsEphemeral(profile: HomeserverProfile): boolean {
    if (profile === "spec") return this.registration.receive_ephemeral === true;
    return this.registration["de.sorunome.msc2409.push_ephemeral"] === true;
  }

  /**
   * To-device events in transactions (MSC2409): Synapse sends them to appservices registered for
   * ephemeral data under either spelling; the spec profile also reads `receive_ephemeral`.
   */
  wantsToDevice(profile: HomeserverProfile): boolean {
    const r = this.registration;
    return (
      r["de.sorunome.msc2409.push_ephemeral"] === true ||
      r.push_ephemeral === true ||
      (profile === "spec" && r.receive_ephemeral === true)
    );
  }

  /** Device lists and key counts in transactions (MSC3202), asked for by `org.matrix.msc3202`. */
  wantsDeviceData(): boolean {
    return this.registration["org.matrix.msc3202"] === true;
  }
}

export class AppserviceRegistry {
  readonly all: Appservice[];

  constructor(registrations: readonly AppserviceRegistration[], serverName: string) {
    const ids = new Set<string>();
    const tokens = new Set<string>();
    for (const r of registrations) {
      // The spec requires id and as_token to be unique per appservice.
      if (ids.has(r.id) || tokens.has(r.as_token))
        throw new Error(`Duplicate appservice id or as_token: ${r.id}`);
      ids.add(r.id);
      tokens.add(r.as_token);
    }
    // registration.yaml may omit `url`; the spec treats that like `url: null` (no pushes).
    this.all = registrations.map((r) => new Appservice({ ...r, url: r.url ?? null }, serverName));
  }

  byToken(token: string): Appservice | undefined {
    return this.all.find((a) => a.registration.as_token === token);
  }

  byId(id: string): Appservice | undefined {
    return this.all.find((a) => a.id === id);
  }

  exclusiveUserOwner(userId: string): Appservice | undefined {
    return this.all.find((a) => a.exclusivelyOwnsUser(userId));
  }

  exclusiveAliasOwner(alias: string): Appservice | undefined {
    return this.all.find((a) => a.exclusivelyOwnsAlias(alias));
  }
}
