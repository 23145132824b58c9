/** Matrix HTML <-> the neutral text model: the parsing and rendering halves live beside this. */
export { htmlToNeutral } from "./html-parse.js";
export { escapeHtml, hasFormatting, neutralToHtml, neutralToPlain } from "./html-render.js";
