import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import ts from "typescript";

/** Module → the modules it imports (paths relative to the graph's root, `/`-separated). */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await tsFiles(full)));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(full);
  }
  return out;
}

/**
 * The import graph of the .ts files under `root`: every `import`, `import type`, `export … from`
 * and `import("…")` with a relative specifier (TypeScript's own scanner, `ts.preProcessFile`), the
 * `.js` of the specifier read as `.ts`. Packages and files outside `root` are left out.
 */
export async function importGraph(root: string): Promise<ImportGraph> {
  const graph = new Map<string, string[]>();
  for (const file of (await tsFiles(root)).sort()) {
    const info = ts.preProcessFile(await readFile(file, "utf8"), true, true);
    const targets = new Set<string>();
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith(".")) continue;
      const target = path.resolve(path.dirname(file), fileName.replace(/\.js$/, ".ts"));
      const relative = path.relative(root, target);
      if (relative.startsWith("..") || !existsSync(target)) continue;
      targets.add(relative.split(path.sep).join("/"));
    }
    graph.set(path.relative(root, file).split(path.sep).join("/"), [...targets].sort());
  }
  return graph;
}

/**
 * One cycle per strongly connected component of more than one module (or a module importing
 * itself), as the modules along it, starting at the component's first module in sort order and
 * closed by that module again. Deterministic: nodes and edges are visited in sort order.
 */
export function findCycles(graph: ImportGraph): string[][] {
  // Tarjan's algorithm, iterative so that a long chain cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  const edges = (node: string) => [...(graph.get(node) ?? [])].sort();
  let next = 0;
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { node: string; pending: string[] }[] = [];
    const enter = (node: string) => {
      index.set(node, next);
      low.set(node, next);
      next += 1;
      stack.push(node);
      onStack.add(node);
      work.push({ node, pending: edges(node) });
    };
    enter(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const target = frame.pending.shift();
      if (target !== undefined) {
        if (!index.has(target)) enter(target);
        else if (onStack.has(target))
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined)
        low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        for (;;) {
          const member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
          if (member === frame.node) break;
        }
        components.push(component.sort());
      }
    }
  }
  const cycles: string[][] = [];
  for (const component of components) {
    const first = component[0]!;
    if (component.length === 1 && !edges(first).includes(first)) continue;
    cycles.push(shortestCycle(first, new Set(component), edges));
  }
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** The shortest path from `start` back to itself inside `members` (breadth first, sorted edges). */
function shortestCycle(
  start: string,
  members: ReadonlySet<string>,
  edges: (node: string) => string[],
): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const target of edges(node)) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let at = node; at !== start; at = cameFrom.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!cameFrom.has(target)) {
        cameFrom.set(target, node);
        queue.push(target);
      }
    }
  }
  throw new Error(`${start} is in a cycle but no path leads back to it`);
}
