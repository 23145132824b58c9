"use strict";
// matrix-bot-sdk requires this module at import time but only touches its exports when Matrix-side
// end-to-end encryption is turned on, which this bridge never does. The real package fetches its
// native library from outside the npm registry in postinstall, so it is replaced (package.json
// "overrides") by this module, which fails loudly at the first use instead of at import.
const reason =
  "@matrix-org/matrix-sdk-crypto-nodejs is not installed in matrix-whatsapp-interop " +
  "(its native binary is downloaded from outside the npm registry); Matrix-side encryption " +
  "through matrix-bot-sdk is not supported. See docs/dependencies.md.";
module.exports = new Proxy(
  {},
  {
    get(_target, property) {
      // Module loaders probe these; answering undefined keeps require()/import working.
      if (property === "__esModule" || property === "then" || typeof property === "symbol") {
        return undefined;
      }
      throw new Error(`${reason} (accessed: ${String(property)})`);
    },
  },
);
