import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { findCycles, importGraph } from "./import-graph.js";

/**
 * No module of src/ reaches itself through its imports, type-only imports included (issue #16:
 * dependencies point one way, inside a folder as between folders). A type-only cycle costs nothing
 * at run time but ties the modules together all the same: neither can be read, moved or tested
 * without the other.
 */
const root = path.resolve(import.meta.dirname, "../..");

describe("import cycles", function () {
  it("src/ has none, type-only imports included", async function () {
    const cycles = findCycles(await importGraph(path.join(root, "src")));
    assert.deepEqual(
      cycles.map((cycle) => cycle.join(" -> ")),
      [],
      "import cycles in src/ (break each by moving the shared part to a module both import)",
    );
  });

  it("the finder reports a cycle once, from its first module, and passes over what only leads into it", function () {
    const graph = new Map([
      ["d.ts", ["a.ts"]],
      ["a.ts", ["b.ts", "e.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts", "e.ts"]],
      ["e.ts", []],
      ["self.ts", ["self.ts"]],
    ]);
    assert.deepEqual(findCycles(graph), [
      ["a.ts", "b.ts", "c.ts", "a.ts"],
      ["self.ts", "self.ts"],
    ]);
    graph.set("c.ts", ["e.ts"]);
    graph.set("self.ts", []);
    assert.deepEqual(findCycles(graph), []);
  });

  it("the graph follows type-only imports, re-exports and .js specifiers, not packages", async function () {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-cycles-"));
    try {
      await mkdir(path.join(dir, "sub"));
      await writeFile(
        path.join(dir, "a.ts"),
        `import type { B } from "./sub/b.js";\nexport type A = B;\n`,
      );
      await writeFile(path.join(dir, "sub/b.ts"), `export { type C as B } from "../c.js";\n`);
      await writeFile(
        path.join(dir, "c.ts"),
        `import { EventEmitter } from "node:events";\nimport type { A } from "./a.js";\nexport type C = A | EventEmitter;\n`,
      );
      const graph = await importGraph(dir);
      assert.deepEqual(Object.fromEntries(graph), {
        "a.ts": ["sub/b.ts"],
        "c.ts": ["a.ts"],
        "sub/b.ts": ["c.ts"],
      });
      assert.deepEqual(findCycles(graph), [["a.ts", "sub/b.ts", "c.ts", "a.ts"]]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
