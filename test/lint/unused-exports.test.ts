import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { unusedExports } from "./unused-exports.js";

/**
 * Issue #16: src/ exports only what another file uses (src/, test/, bench/, simulator/, scripts/,
 * migrations/: the program of tsconfig.json). An export nothing imports is dead code, or a name
 * that should not be exported.
 */
const root = path.resolve(import.meta.dirname, "../..");

/** Loaded from the build by bin/matrix-whatsapp-interop.js, which the program does not see. */
const ENTRY_POINTS = ["src/main.ts main"];

describe("unused exports", function () {
  this.timeout(120_000);

  it("every export of src/ is used by another file, or is a known entry point", function () {
    const found = unusedExports(root, "src").map((u) => `${u.file} ${u.name}`);
    const allowed = new Set(ENTRY_POINTS);
    assert.deepEqual(
      found.filter((u) => !allowed.has(u)),
      [],
      "exports nothing else uses: delete them, or drop `export` when their module uses them",
    );
  });

  it("the finder tells dead code from a needless export, and sees uses through re-exports, namespaces, import() and unions", async function () {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-unused-"));
    const files: Record<string, string> = {
      "tsconfig.json": JSON.stringify({
        compilerOptions: { module: "NodeNext", strict: true, lib: ["ES2023"], types: [] },
        include: ["lib", "use"],
      }),
      "lib/a.ts": [
        "export const used = 1;",
        "export const dead = 2;",
        "export const onlyHere = 3;",
        "export const viaBarrel = onlyHere;",
        "export const viaDynamic = 4;",
        "export function viaUnion(): number { return 5; }",
      ].join("\n"),
      "lib/b.ts": [
        "export function viaUnion(): number { return 6; }",
        "export type Unused = string;",
        "export const onlyB = 7;",
      ].join("\n"),
      "lib/index.ts": 'export { viaBarrel, dead as deadAgain } from "./a.js";\n',
      "use/main.ts": [
        'import { used } from "../lib/a.js";',
        'import { viaBarrel } from "../lib/index.js";',
        'import * as a from "../lib/a.js";',
        'import * as b from "../lib/b.js";',
        "export const sum = async () => {",
        '  const { viaDynamic } = await import("../lib/a.js");',
        "  let n = used + viaBarrel + viaDynamic;",
        "  for (const m of [a, b]) n += m.viaUnion();",
        "  return n;",
        "};",
      ].join("\n"),
    };
    try {
      await Promise.all(
        Object.entries(files).map(async ([name, text]) => {
          await import("node:fs/promises").then((fs) =>
            fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true }),
          );
          await writeFile(path.join(dir, name), text);
        }),
      );
      assert.deepEqual(unusedExports(dir, "lib"), [
        { file: "lib/a.ts", name: "dead", usedInFile: false },
        { file: "lib/a.ts", name: "onlyHere", usedInFile: true },
        { file: "lib/b.ts", name: "onlyB", usedInFile: false },
        { file: "lib/b.ts", name: "Unused", usedInFile: false },
        { file: "lib/index.ts", name: "deadAgain", usedInFile: false },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
