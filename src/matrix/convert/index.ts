/** Matrix <-> neutral message conversion: the public surface for the Matrix side of the bridge. */
export { htmlToNeutral, neutralToHtml, neutralToPlain, hasFormatting } from "./html.js";
export { matrixEventToNeutral, stripReplyFallback } from "./to-neutral.js";
export {
  neutralToMatrix,
  roomMessage,
  editContent,
  reactionContent,
  redactionReason,
  withQuote,
} from "./from-neutral.js";
export { mediaToMatrix, defaultFileName, type UploadedMedia } from "./from-neutral-media.js";
export { parseGeoUri, formatGeoUri } from "./geo.js";
export { summarizeVcard } from "./vcard.js";
export type * from "./types.js";
