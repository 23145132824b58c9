import type { NetworkDescription } from "./network.js";

/**
 * What the bridge tells users, in one place so the wording can be reviewed as a whole. The
 * security warning frames the network's own points (NetworkDescription.securityNotes; interop:
 * what PROTOCOL.md §19 says a user must know before opting in).
 */

export function securityWarning(
  notes: readonly string[],
  flows: readonly { id: string; name: string }[],
): string {
  const choices = flows.map((f) => `\`${f.id}\` (${f.name})`).join(" or ");
  return [
    "Before you log in, please read how this bridge works:",
    "",
    ...notes.map((note, i) => `${i + 1}. ${note}`),
    "",
    `To accept and continue, reply ${choices}. Reply \`cancel\` to stop.`,
  ].join("\n");
}

export const notLoggedIn = "You are not logged in. Send `login` to start.";

export function requestRoomTopic(contact: string, prefix: string): string {
  return (
    `Message request: ${contact} wrote to you for the first time. Join to accept and reply; ` +
    `reject the invitation to decline (they are not told). In this room, \`${prefix} block\` blocks ` +
    `them and \`${prefix} report\` reports them as spam.`
  );
}

export function outgoingPendingTopic(contact: string): string {
  return `Chat request: ${contact} must accept your first message before they can reply.`;
}

export function declinedNotice(contact: string): string {
  return (
    `You declined the message request from ${contact}; they are not told. To stop them writing ` +
    `again send \`block ${contact}\`; to report them as spam send \`report ${contact}\` ` +
    `(add a count, e.g. \`report ${contact} 3\`, to disclose their latest messages).`
  );
}

/** The network's words the texts below use (core/network.ts NetworkDescription). */
type Words = Pick<
  NetworkDescription,
  "displayName" | "commandPrefix" | "reachableContacts" | "identityChangeCauses"
> & { identifier: Pick<NetworkDescription["identifier"], "noun"> };

export function notReachable(contact: string, network: Words): string {
  const whyNot = network.reachableContacts?.whyNot;
  return (
    `${contact} cannot be reached through this bridge: it is not a ${network.displayName} ` +
    `${network.identifier.noun}${whyNot === undefined ? "" : `, or ${whyNot}`}.`
  );
}

/** The bot's first words in a new management room. */
export function welcome(network: Words): string {
  const who = network.reachableContacts?.who;
  return (
    `Hello! I bridge your Matrix account to ${network.displayName} contacts` +
    `${who === undefined ? "" : ` ${who}`}. Send \`login\` to start (you will first be told what ` +
    `the bridge and ${network.displayName} can see), or \`help\` for the commands.`
  );
}

/** The topic of a user's space of portals. */
export const spaceTopic = (network: Words): string =>
  `Your chats with ${network.displayName} contacts, bridged, kept apart from your other rooms.`;

/**
 * A contact's identity key changed: the user should compare the new safety number. The usual
 * causes are the network's (NetworkDescription.identityChangeCauses).
 */
export function identityChangedNotice(
  contact: string,
  network: Words,
  change: { verifiedMarkCleared?: boolean; sendingHeld?: boolean },
): string {
  const causes = network.identityChangeCauses;
  const lines = [
    `The security code with ${contact} changed. ` +
      (causes === undefined
        ? "It can mean someone else is receiving their messages."
        : `This happens when ${causes}; it can also mean someone else is receiving their messages.`),
  ];
  if (change.verifiedMarkCleared === true)
    lines.push(`${contact} is no longer marked as verified.`);
  lines.push(
    change.sendingHeld === true
      ? `Messages to ${contact} are held until you check the new code with \`${network.commandPrefix} verify\` and confirm it.`
      : `Compare the new code with them using \`${network.commandPrefix} verify\`.`,
  );
  return lines.join(" ");
}

/** Longest piece of a user's own input a notice repeats back. */
const ECHO_MAX_CHARS = 64;

/**
 * A user's input as a notice repeats it: at most ECHO_MAX_CHARS characters (then "…"), so that a
 * 40,000-character word cannot make the bot's answer too large to post.
 */
export function echoed(input: string, max = ECHO_MAX_CHARS): string {
  const chars = [...input];
  return chars.length <= max ? input : `${chars.slice(0, max).join("")}…`;
}

// Groups (issue #17, docs/groups.md). Names are the bridge's labels for members (an address, or the
// connector's label naming another provider), never names the members chose.

export const groupRequestNotice = (by: string): string =>
  `${by} added you to this group. Join the room to accept; reject the invite to leave the group.`;

export const groupCommandRefused = (command: string, bot: string): string =>
  `\`${command}\` is not run in a group's room: other people read it here. Send it to me in ` +
  `your management room (a direct chat with ${bot}).`;

export const groupOutsiderReason = "only members of the group may be in its room";

export const groupOutsiderNotice = (user: string): string =>
  `${user} was removed: only the group's members may read this room. To add someone, invite ` +
  `their ghost (it adds them to the group at the network); a user of this bridge comes in when ` +
  `their own login is added to the group.`;

export const groupNotMember =
  "Not sent: you are not a member of this group at the network, so nothing can be sent for you here.";

export const groupChangeRefused = (what: string, why: string): string =>
  `Not changed at the network (${what}): ${why} The change was undone here.`;

export const groupMembersRejected = (who: readonly string[]): string =>
  `Could not add ${who.join(", ")}: they cannot be reached or refuse to be added to groups.`;

export const groupCreated = (subject: string): string =>
  `Created the group "${subject}". You have been invited to its room.`;

export const groupCreatedHere = (subject: string): string =>
  `This room is now the group "${subject}". Invite or remove people here to change its members.`;

export const groupCreateHereUsage = (prefix: string): string =>
  `Usage: \`${prefix} create-group <group name>\` in a room where you invited the people to add.`;

export const groupInviteOffer = (who: string, prefix: string): string =>
  `This room is not a direct chat. To make it a group with ${who} and the others you invite ` +
  `here, send \`${prefix} create-group <group name>\` in this room. For a direct chat with ` +
  `${who}, start a direct chat with them instead.`;

export const groupUndecryptable = (who: string, at: string): string =>
  `A message from ${who} (sent ${at}) could not be decrypted. Their app may send it again; ` +
  "otherwise ask them to resend it.";
