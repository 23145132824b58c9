import path from "node:path";
import ts from "typescript";

/** An export of a module that no other module uses. */
export interface UnusedExport {
  /** The exporting module, relative to the project root, `/`-separated. */
  readonly file: string;
  readonly name: string;
  /** Whether its own module uses it (then only `export` goes; else the code is dead). */
  readonly usedInFile: boolean;
}

/**
 * The exports of the modules under `root/sourceDir` that no other file of the project (the
 * program of `root/tsconfig.json`) uses. A use is any identifier the type checker resolves to the
 * export, through re-exports, `import * as`, a destructured `await import()`, `typeof import()`, and
 * a property of a union of module objects (`for (const t of [tables.a, tables.b]) t.f()`). A
 * re-export counts as unused when nothing uses the name through it.
 */
export function unusedExports(root: string, sourceDir: string): UnusedExport[] {
  const configFile = ts.readConfigFile(path.join(root, "tsconfig.json"), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const checker = program.getTypeChecker();
  const files = program
    .getSourceFiles()
    .filter((f) => !f.isDeclarationFile && !path.relative(root, f.fileName).startsWith(".."));

  const usedIn = new Map<ts.Symbol, Set<string>>();
  const mark = (symbol: ts.Symbol, file: string) => {
    let set = usedIn.get(symbol);
    if (set === undefined) usedIn.set(symbol, (set = new Set()));
    set.add(file);
  };
  /** Marks the symbol, every alias on the way to its declaration, and its declarations' own. */
  const note = (symbol: ts.Symbol | undefined, file: string) => {
    if (symbol === undefined) return;
    let current = symbol;
    mark(current, file);
    while (current.flags & ts.SymbolFlags.Alias) {
      const next = checker.getImmediateAliasedSymbol(current);
      if (next === undefined || next === current) break;
      mark(next, file);
      current = next;
    }
    for (const declaration of current.declarations ?? []) {
      const own = (declaration as ts.Declaration & { symbol?: ts.Symbol }).symbol;
      if (own !== undefined) mark(own, file);
    }
  };
  const isDeclarationName = (node: ts.Identifier) => {
    const parent = node.parent as ts.Node & { name?: ts.Node };
    return (
      parent.name === node &&
      (ts.isFunctionDeclaration(parent) ||
        ts.isClassDeclaration(parent) ||
        ts.isInterfaceDeclaration(parent) ||
        ts.isTypeAliasDeclaration(parent) ||
        ts.isVariableDeclaration(parent) ||
        ts.isEnumDeclaration(parent))
    );
  };
  for (const sourceFile of files) {
    const file = sourceFile.fileName;
    const visit = (node: ts.Node): void => {
      // An export names what it exports without using it: `export { x }`, `export { x } from`.
      if (ts.isExportSpecifier(node)) return;
      if (ts.isIdentifier(node)) {
        if (!isDeclarationName(node)) note(checker.getSymbolAtLocation(node), file);
        const parent = node.parent;
        // const { f } = await import("./m.js"): the name binds a property of the module object.
        if (ts.isBindingElement(parent) && parent.name === node) {
          const key = parent.propertyName ?? node;
          if (ts.isIdentifier(key))
            note(checker.getTypeAtLocation(parent.parent).getProperty(key.text), file);
        }
      }
      // typeof import("./m.js"): the whole module object is used.
      if (ts.isImportTypeNode(node) && node.qualifier === undefined) {
        for (const property of checker.getTypeAtLocation(node).getProperties())
          note(property, file);
      }
      ts.forEachChild(node, visit);
    };
    visit(sourceFile);
  }

  const relative = (file: string) => path.relative(root, file).split(path.sep).join("/");
  const unused: UnusedExport[] = [];
  for (const sourceFile of files) {
    const file = relative(sourceFile.fileName);
    if (!file.startsWith(`${sourceDir}/`)) continue;
    const module = checker.getSymbolAtLocation(sourceFile);
    if (module === undefined) continue;
    for (const exported of checker.getExportsOfModule(module)) {
      const target =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declaredIn = target.declarations?.[0]?.getSourceFile().fileName;
      const users = new Set([...(usedIn.get(exported) ?? []), ...(usedIn.get(target) ?? [])]);
      const elsewhere = [...users].some((u) => u !== sourceFile.fileName && u !== declaredIn);
      if (elsewhere) continue;
      const usedInFile =
        users.has(sourceFile.fileName) || (declaredIn !== undefined && users.has(declaredIn));
      unused.push({ file, name: exported.name, usedInFile });
    }
  }
  return unused.sort((a, b) => a.file.localeCompare(b.file) || a.name.localeCompare(b.name));
}
