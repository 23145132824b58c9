// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Dependency directions (docs/architecture.md, "Dependencies"). Each folder of src/ lists the
// folders of src/ it may import; the patterns match the relative specifier, so each depth gets its
// own override (`../interop/x` from src/core/, `../../interop/x` from src/core/commands/) and a
// sibling inside the same folder (`../convert/x` from src/matrix/crypto/) is not mistaken for a
// top-level folder. Dynamic import() is not checked by no-restricted-imports, hence the
// no-restricted-syntax twins: of every pattern (`restricted`), and of simulator/ everywhere. In
// src/interop/ the store rules below set no-restricted-syntax again, with those twins in it.
const simulator = {
  regex: "^(\\.\\./)+simulator(/|$)",
  message:
    "Nothing in src/ imports the simulator; the command line loads simulator/embedded-gatekeeper.ts by path (src/cli/embedded-entry.ts; docs/architecture.md, Dependencies).",
};
const noDynamicSimulator = {
  selector: "ImportExpression[source.value=/^(\\.\\.\\/)+simulator\\//]",
  message: simulator.message,
};
/**
 * `patterns` (no-restricted-imports) for `files`, and their twins for a dynamic import() of a
 * literal specifier (no-restricted-syntax), which the command line uses to load the bridge and
 * the connector only when it runs them.
 */
const restricted = (files, patterns) => ({
  files,
  rules: {
    "no-restricted-imports": ["error", { patterns: [simulator, ...patterns] }],
    "no-restricted-syntax": [
      "error",
      noDynamicSimulator,
      ...patterns.map(({ regex, message }) => ({
        selector: `ImportExpression[source.value=/${regex.replaceAll("/", "\\/")}/]`,
        message,
      })),
    ],
  },
});
/**
 * The rule for one folder of src/: it may import only `allowed` (folders of src/; `core/network`
 * style paths: a folder with the only files or subfolders allowed in it; `bridge.ts` style names:
 * a file at the top of src/). Anything else above the folder is refused, main.ts always.
 */
const only = (folder, allowed, why) =>
  [1, 2, 3].map((depth) => {
    const up = `^(\\.\\./){${depth}}`;
    const topFiles = allowed
      .filter((a) => a.endsWith(".ts"))
      .map((a) => `|${a.slice(0, -3)}\\.js$`)
      .join("");
    const folders = [folder, ...allowed.filter((a) => !a.includes("/") && !a.endsWith(".ts"))];
    const partly = allowed.filter((a) => a.includes("/"));
    const partlyFolders = [...new Set(partly.map((a) => a.split("/")[0]))];
    const partlyRest = (f) =>
      partly
        .filter((a) => a.startsWith(`${f}/`))
        .map((a) => a.slice(f.length + 1))
        .join("|");
    const message = `src/${folder}/ may import only ${allowed.length === 0 ? "its own files" : allowed.map((a) => `${a}`).join(", ")} of the project${why === undefined ? "" : `: ${why}`} (docs/architecture.md, Dependencies).`;
    return restricted(
      [depth === 3 ? `src/${folder}/*/*/**/*.ts` : `src/${folder}/${"*/".repeat(depth - 1)}*.ts`],
      [
        { regex: `${up}(?!(${[...folders, ...partlyFolders].join("|")})/${topFiles})`, message },
        ...partlyFolders.map((f) => ({
          regex: `${up}${f}/(?!(${partlyRest(f)})(\\.js$|/))`,
          message,
        })),
      ],
    );
  });
/**
 * The entry side reaches the WhatsApp connector only through its two entry modules: the factory
 * that builds it and the description the command line derives from the config (the registration's
 * namespace) without loading the connector. Never crypto/, provider/ or the connector's insides.
 */
const interopEntries = ["interop/connector/factory", "interop/connector/description"];
const entryWhy = "the rest of interop/ is the connector's own";
const interopDirections = only(
  "interop",
  ["util", "config", "db", "vault", "core/network"],
  "a connector sees the core only through its contract",
);
const dependencyDirections = [
  {
    files: ["src/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [simulator] }],
      "no-restricted-syntax": ["error", noDynamicSimulator],
    },
  },
  ...only("util", []),
  ...only("config", ["util"]),
  ...only("vault", ["util"]),
  ...only("db", ["util"]),
  ...only("core", ["util", "config", "db"], "the core knows no network, no Matrix library, no CLI"),
  ...interopDirections,
  ...only(
    "networks",
    ["util", "core/network"],
    "a network connector sees the core only through its contract and never touches Matrix",
  ),
  ...only("matrix", ["util", "config", "db", "vault", "core"]),
  ...only(
    "metrics",
    ["util", "core/network", "core/observer", "matrix/ingress"],
    "metrics are fed through observer interfaces",
  ),
  ...only("provisioning", ["util", "config", "core"]),
  ...only(
    "cli",
    ["util", "config", "db", "core/network", ...interopEntries, "bridge.ts"],
    entryWhy,
  ),
  restricted(
    ["src/main.ts"],
    [
      {
        regex: "^\\./(?!(cli|util)/)",
        message:
          "src/main.ts may import only cli/ and util/ of the project: it parses the command line and runs the command (docs/architecture.md, Dependencies).",
      },
    ],
  ),
  restricted(
    ["src/bridge.ts"],
    [
      {
        regex: `^\\./(cli/|main\\.js$|interop/(?!(${interopEntries.map((e) => e.slice("interop/".length)).join("|")})\\.js$))`,
        message: `src/bridge.ts may import all of src/ but cli/ and main.ts, and of interop/ only ${interopEntries.join(", ")}: ${entryWhy} (docs/architecture.md, Dependencies).`,
      },
    ],
  ),
];

// Interop tables are read and written only in src/interop/store/, one module per table
// (docs/architecture.md, "Folders"; issue #16). Elsewhere in src/interop/ these forms are refused:
// a query builder started by table name on the shared knex or on a transaction (`knex(...)`,
// `this.knex(...)`, `ctx.knex(...)`, `trx(...)`, `tx(...)`, `db(...)`), a raw statement
// (`tx.run`, `tx.all`, `knex.raw`) and SQL text. Opening a transaction stays the callers'
// (`knex.transaction`, `SqlRunner.of(knex)`): what commits together is their decision. The rule
// goes by those names, the ones the code uses; a transaction called by another name would pass.
const storeMessage =
  "Interop tables are read and written only in src/interop/store/ (one module per table; docs/architecture.md, Folders): call the table's module.";
const knexNames = "/^(knex|trx|tx|db)$/";
const rawInterop = [
  `CallExpression[callee.type='Identifier'][callee.name=${knexNames}]`,
  "CallExpression[callee.type='MemberExpression'][callee.property.name='knex']",
  `CallExpression[callee.property.name=/^(run|all|raw)$/][callee.object.name=${knexNames}]`,
  "CallExpression[callee.property.name=/^(run|all|raw)$/][callee.object.property.name='knex']",
  "Literal[value=/^\\s*(select\\s.+\\sfrom|insert\\s+into|update\\s+\\w+\\s+set|delete\\s+from)\\s/i]",
].map((selector) => ({ selector, message: storeMessage }));
// src/interop/ imports the vault but does not pass it on: its users import src/vault/ themselves,
// so that nothing reaches the vault through the Signal layer (issue #16).
const vaultReexport = ["ExportNamedDeclaration", "ExportAllDeclaration"].map((node) => ({
  selector: `${node}[source.value=/^(\\.\\.\\/)+vault\\//]`,
  message:
    "src/interop/ does not re-export src/vault/: import src/vault/ directly (docs/architecture.md, Dependencies).",
}));
/** The dynamic-import twins of a `restricted` config (its no-restricted-syntax entries). */
const dynamicTwins = (config) => config.rules["no-restricted-syntax"].slice(1);
const storeImportsOnlyCodec = {
  regex: "^\\.\\./(?!\\.\\./|codec/)",
  message:
    "src/interop/store/ may import only codec/ of src/interop/: the callers (crypto/, provider/, connector/) import the store, never the reverse (docs/architecture.md, Dependencies).",
};
const interopStore = [
  // Per depth, as interop's directions: a later no-restricted-syntax replaces the earlier one, so
  // each keeps its depth's dynamic-import twins.
  ...interopDirections.map((directions) => ({
    files: directions.files,
    ignores: ["src/interop/store/**"],
    rules: {
      "no-restricted-syntax": [
        "error",
        ...dynamicTwins(directions),
        ...vaultReexport,
        ...rawInterop,
      ],
    },
  })),
  {
    // The store modules sit below crypto/ and provider/: of src/interop/ they import only codec/
    // (JID helpers), besides interop/'s own directions (src/interop/*/*.ts above).
    files: ["src/interop/store/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...interopDirections[1].rules["no-restricted-imports"][1].patterns,
            storeImportsOnlyCodec,
          ],
        },
      ],
      "no-restricted-syntax": [
        "error",
        ...dynamicTwins(interopDirections[1]),
        {
          selector: `ImportExpression[source.value=/${storeImportsOnlyCodec.regex.replaceAll("/", "\\/")}/]`,
          message: storeImportsOnlyCodec.message,
        },
        ...vaultReexport,
      ],
    },
  },
];

export default tseslint.config(
  {
    ignores: [
      "dist/",
      ".product-build-test/",
      "node_modules/",
      "data/",
      "vendor/",
      "bench/results/",
      "coverage/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: "readonly", console: "readonly", Buffer: "readonly" },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      eqeqeq: ["error", "always"],
    },
  },
  {
    // The product logs through its logger; console output belongs to the CLI, tests, demo and bench.
    files: ["src/**/*.ts", "simulator/**/*.ts"],
    ignores: ["src/cli/**"],
    rules: { "no-console": "error" },
  },
  ...dependencyDirections,
  ...interopStore,
);
