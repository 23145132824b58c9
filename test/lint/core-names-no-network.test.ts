import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import ts from "typescript";

/**
 * Issue #16's "done means": `grep -rn WhatsApp src/core` finds nothing. Whatever the core says
 * about a network comes from the network's self-description (core/network.ts
 * NetworkDescription; interop's is src/interop/connector/description.ts), so a network's name
 * written into the core, even in a comment's example, is a regression.
 */
const root = path.resolve(import.meta.dirname, "../..");

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(full)));
    else if (entry.name.endsWith(".ts")) out.push(full);
  }
  return out;
}

describe("the core names no network", function () {
  it("no file of src/core mentions WhatsApp", async function () {
    const hits: string[] = [];
    for (const file of await sources(path.join(root, "src/core"))) {
      const lines = (await readFile(file, "utf8")).split("\n");
      lines.forEach((line, i) => {
        if (/WhatsApp/.test(line))
          hits.push(`${path.relative(root, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(hits, []);
  });

  // A contact is known by the network's address (interop: a phone number; loopback: name@loop),
  // so a name such as `withNumber` tells the reader the core knows phones. The Signal term
  // "safety number" and the global `Number` are the core's own.
  it("no identifier in src/core is named after a phone number", async function () {
    const hits: string[] = [];
    for (const file of await sources(path.join(root, "src/core"))) {
      const source = ts.createSourceFile(
        file,
        await readFile(file, "utf8"),
        ts.ScriptTarget.Latest,
      );
      const visit = (node: ts.Node): void => {
        if (
          ts.isIdentifier(node) &&
          /number|phone/i.test(node.text) &&
          !/safetyNumber/i.test(node.text) &&
          node.text !== "Number"
        ) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
          hits.push(`${path.relative(root, file)}:${line + 1}: ${node.text}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    assert.deepEqual(hits, []);
  });
});
