import type { HomeserverCore } from "./core.js";

/** One uploaded file as the server stores it. */
export interface StoredMedia {
  mxc: string;
  contentType: string;
  uploader: string;
  bytes: Buffer;
}

/**
 * Everything the homeserver holds that relates to one room, as an end-to-end test scans it for
 * plaintext: each entry is the JSON the server stored (events as stored, with the unredacted
 * original of redacted events, which Synapse retains for days; current state; to-device messages
 * sent by or to anyone who was ever in the room, delivered or not, pushed to appservices or not;
 * the room's account data), plus the bytes of every upload by anyone who was ever in the room or
 * belongs to an appservice interested in it.
 */
export interface RoomDump {
  events: string[];
  state: string[];
  toDevice: string[];
  accountData: string[];
  media: StoredMedia[];
  /**
   * Where `text` occurs: `events[3]`, `toDevice[0]`, `media[mxc://...]`, ... (empty when nowhere).
   * JSON entries are searched for the text and for its JSON-escaped form; media for its UTF-8 bytes.
   */
  find(text: string): string[];
}

export function dumpRoom(core: HomeserverCore, roomId: string): RoomDump {
  const room = core.room(roomId);
  const people = new Set<string>();
  for (const stored of room.events) {
    people.add(stored.event.sender);
    if (stored.event.type === "m.room.member" && stored.event.state_key !== undefined)
      people.add(stored.event.state_key);
  }
  const events: string[] = [];
  for (const stored of room.events) {
    events.push(JSON.stringify(core.clientEvent(stored)));
    if (stored.original !== undefined) events.push(JSON.stringify(stored.original));
  }
  const state = room.currentState().map((e) => JSON.stringify(e));
  const toDevice = core.e2ee.toDevice.log
    .filter((m) => people.has(m.sender) || people.has(m.toUserId))
    .map((m) => JSON.stringify(m));
  const accountData = [...people].flatMap((userId) =>
    core.accountData.roomChangedSince(userId, roomId, -1).map((e) => JSON.stringify(e)),
  );
  // A bridge may upload as its bot even where the bot is not a member: count its users too.
  const bridges = core.appservices.all.filter((as) => as.interestedInRoom(room));
  const bridged = (userId: string): boolean => bridges.some((as) => as.ownsUser(userId));
  const media = core.media
    .all()
    .filter((m) => people.has(m.uploader) || bridged(m.uploader))
    .map((m) => ({
      mxc: `mxc://${core.serverName}/${m.mediaId}`,
      contentType: m.contentType,
      uploader: m.uploader,
      bytes: m.data,
    }));
  const sections = { events, state, toDevice, accountData };
  return {
    ...sections,
    media,
    find(text) {
      const escaped = JSON.stringify(text).slice(1, -1);
      const found: string[] = [];
      for (const [name, entries] of Object.entries(sections)) {
        entries.forEach((entry, i) => {
          if (entry.includes(text) || entry.includes(escaped)) found.push(`${name}[${i}]`);
        });
      }
      const bytes = Buffer.from(text, "utf8");
      for (const m of media) if (m.bytes.includes(bytes)) found.push(`media[${m.mxc}]`);
      return found;
    },
  };
}
