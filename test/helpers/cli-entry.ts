// The CLI from the sources, for tests: the same main() that bin/ loads from the build.
import { main } from "../../src/main.js";

// Exit explicitly: a library timer left behind after a failed start must not keep the process up.
process.exit(await main(process.argv.slice(2)));
