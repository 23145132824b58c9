/** Matrix HTML <-> the neutral text model: the parsing and rendering halves live beside this. */
export { htmlToNeutral } from "./html-parse.js";
export { hasFormatting, neutralToHtml, neutralToPlain } from "./html-render.js";
