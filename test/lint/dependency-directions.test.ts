import assert from "node:assert/strict";
import path from "node:path";
import { ESLint } from "eslint";

/**
 * The lint rule of eslint.config.js that keeps the dependency directions of docs/architecture.md:
 * each case lints a one-line module as if it were a file of src/ and checks which imports the
 * project's own configuration refuses.
 */
const root = path.resolve(import.meta.dirname, "../..");
const eslint = new ESLint({ cwd: root, overrideConfigFile: path.join(root, "eslint.config.js") });

const DIRECTION_RULES = new Set(["no-restricted-imports", "no-restricted-syntax"]);

/** The direction errors ESLint reports for `code` placed at `file` (relative to the root). */
async function directionErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  assert.ok(result !== undefined);
  return result.messages
    .filter((m) => m.ruleId !== null && DIRECTION_RULES.has(m.ruleId))
    .map((m) => m.message);
}

const importing = (specifier: string) => `import { x } from "${specifier}";\nexport { x };\n`;

describe("dependency directions (lint rule)", function () {
  this.timeout(30_000);

  const refused: [string, string][] = [
    ["src/core/bridge-core.ts", "../interop/connector/factory.js"],
    ["src/core/commands/account.ts", "../../matrix/router.js"],
    ["src/core/logins.ts", "../cli/registration.js"],
    ["src/core/portals.ts", "../metrics/metrics.js"],
    ["src/core/portals.ts", "../provisioning/api.js"],
    ["src/core/portals.ts", "../vault/key-vault.js"],
    ["src/db/portals.ts", "../core/network.js"],
    ["src/interop/connector/factory.ts", "../../matrix/appservice.js"],
    ["src/interop/connector/factory.ts", "../../core/bridge-core.js"],
    ["src/interop/convert/styling.ts", "../../core/ghosts.js"],
    ["src/interop/connector/factory.ts", "../../cli/registration.js"],
    ["src/interop/convert/styling.ts", "../../../simulator/main.js"],
    ["src/matrix/appservice.ts", "../cli/registration.js"],
    ["src/matrix/crypto/devices.ts", "../../interop/crypto/index.js"],
    ["src/metrics/readiness.ts", "../matrix/appservice.js"],
    ["src/provisioning/api.ts", "../matrix/router.js"],
    ["src/util/ids.ts", "../core/network.js"],
    ["src/vault/key-vault.ts", "../interop/crypto/errors.js"],
    ["src/config/schema.ts", "../cli/args.js"],
    ["src/cli/commands.ts", "../../simulator/main.js"],
    ["src/core/bridge-core.ts", "../networks/loopback/index.js"],
    ["src/core/commands/account.ts", "../../networks/loopback/network.js"],
    ["src/interop/connector/connector.ts", "../../core/contact-directory.js"],
    ["src/networks/loopback/network.ts", "../../matrix/router.js"],
    ["src/networks/loopback/network.ts", "../../interop/connector/connector.js"],
    ["src/networks/loopback/network.ts", "../../core/bridge-core.js"],
    ["src/networks/loopback/network.ts", "../../db/users.js"],
    ["src/cli/commands.ts", "../interop/crypto/index.js"],
    ["src/cli/commands.ts", "../interop/provider/engine.js"],
    ["src/cli/commands.ts", "../interop/connector/connector.js"],
    ["src/cli/network.ts", "../interop/codec/jid.js"],
    ["src/cli/commands.ts", "../matrix/appservice.js"],
    ["src/cli/commands.ts", "../core/bridge-core.js"],
    ["src/cli/commands.ts", "../main.js"],
    ["src/bridge.ts", "./interop/crypto/index.js"],
    ["src/bridge.ts", "./interop/provider/engine.js"],
    ["src/bridge.ts", "./interop/connector/connector.js"],
    ["src/bridge.ts", "./cli/args.js"],
    ["src/bridge.ts", "./main.js"],
    ["src/main.ts", "./bridge.js"],
    ["src/main.ts", "./interop/connector/factory.js"],
    ["src/main.ts", "./interop/crypto/index.js"],
  ];
  for (const [file, specifier] of refused) {
    it(`refuses ${specifier} in ${file}`, async function () {
      const errors = await directionErrors(file, importing(specifier));
      assert.ok(errors.length > 0, `${specifier} should be refused in ${file}`);
      for (const e of errors) assert.match(e, /docs\/architecture\.md, Dependencies/);
    });
  }

  const allowed: [string, string][] = [
    ["src/core/bridge-core.ts", "../db/users.js"],
    ["src/core/commands/account.ts", "../portals.js"],
    ["src/core/commands/account.ts", "../../util/ids.js"],
    ["src/db/portals.ts", "../util/ids.js"],
    ["src/interop/connector/factory.ts", "../../core/network.js"],
    ["src/interop/connector/factory.ts", "../codec/jid.js"],
    ["src/interop/connector/factory.ts", "../../vault/key-vault.js"],
    ["src/matrix/crypto/room-crypto.ts", "../convert/types.js"],
    ["src/matrix/router.ts", "../core/bridge-core.js"],
    ["src/metrics/metrics.ts", "../matrix/ingress/index.js"],
    ["src/metrics/readiness.ts", "../util/readiness.js"],
    ["src/util/ids.ts", "./errors.js"],
    ["src/cli/commands.ts", "../interop/connector/factory.js"],
    ["src/networks/loopback/network.ts", "../../core/network.js"],
    ["src/networks/loopback/network.ts", "../../util/ids.js"],
    ["src/networks/loopback/network.ts", "./description.js"],
    // What the entry side imports today.
    ["src/cli/embedded-entry.ts", "../interop/connector/factory.js"],
    ["src/cli/network.ts", "../interop/connector/description.js"],
    ["src/cli/network.ts", "../core/network.js"],
    ["src/cli/commands.ts", "../bridge.js"],
    ["src/cli/commands.ts", "../config/load.js"],
    ["src/cli/commands.ts", "../db/migrate.js"],
    ["src/cli/commands.ts", "./registration.js"],
    ["src/bridge.ts", "./interop/connector/factory.js"],
    ["src/bridge.ts", "./matrix/router.js"],
    ["src/bridge.ts", "./core/bridge-core.js"],
    ["src/bridge.ts", "./vault/key-vault.js"],
    ["src/bridge.ts", "./metrics/index.js"],
    ["src/main.ts", "./cli/commands.js"],
    ["src/main.ts", "./util/warnings.js"],
  ];
  for (const [file, specifier] of allowed) {
    it(`allows ${specifier} in ${file}`, async function () {
      assert.deepEqual(await directionErrors(file, importing(specifier)), []);
    });
  }

  it("refuses a re-export of the vault from src/interop/, store/ included; importing it stays allowed", async function () {
    const reexports: [string, string][] = [
      ["src/interop/crypto/index.ts", `export { KeyVault } from "../../vault/key-vault.js";\n`],
      ["src/interop/crypto/errors.ts", `export * from "../../vault/errors.js";\n`],
      [
        "src/interop/store/outbox.ts",
        `export type { KeyVault } from "../../vault/key-vault.js";\n`,
      ],
    ];
    for (const [file, code] of reexports) {
      const errors = await directionErrors(file, code);
      assert.ok(errors.length > 0, `${code.trim()} should be refused in ${file}`);
      for (const e of errors) assert.match(e, /does not re-export src\/vault\//);
    }
    const use = `import type { KeyVault } from "../../vault/key-vault.js";\nexport type V = KeyVault;\n`;
    assert.deepEqual(await directionErrors("src/interop/crypto/index.ts", use), []);
  });

  it("checks dynamic imports like static ones: the command line loads the bridge and the connector's factory, not the rest of interop/; the core loads no connector", async function () {
    const load = (specifier: string) => `export const load = () => import("${specifier}");\n`;
    assert.deepEqual(await directionErrors("src/cli/commands.ts", load("../bridge.js")), []);
    assert.deepEqual(
      await directionErrors("src/cli/commands.ts", load("../interop/connector/factory.js")),
      [],
    );
    for (const specifier of ["../interop/provider/engine.js", "../matrix/appservice.js"]) {
      const errors = await directionErrors("src/cli/commands.ts", load(specifier));
      assert.ok(errors.length > 0, `import("${specifier}") should be refused in src/cli/`);
      for (const e of errors) assert.match(e, /docs\/architecture\.md, Dependencies/);
    }
    const core = load("../interop/connector/factory.js");
    assert.ok((await directionErrors("src/core/bridge-core.ts", core)).length > 0);
  });

  it("checks dynamic imports in src/interop/ too, whose store rules set no-restricted-syntax again", async function () {
    const load = (specifier: string) => `export const load = () => import("${specifier}");\n`;
    const refusedHere: [string, string][] = [
      ["src/interop/provider/engine.ts", "../../matrix/router.js"],
      ["src/interop/provider/engine.ts", "../../core/bridge-core.js"],
      ["src/interop/crypto/device-state.ts", "../../cli/registration.js"],
      ["src/interop/store/groups.ts", "../provider/groups.js"],
      ["src/interop/store/groups.ts", "../../matrix/router.js"],
    ];
    for (const [file, specifier] of refusedHere) {
      const errors = await directionErrors(file, load(specifier));
      assert.ok(errors.length > 0, `import("${specifier}") should be refused in ${file}`);
    }
    assert.deepEqual(
      await directionErrors("src/interop/provider/engine.ts", load("../../core/network.js")),
      [],
    );
    assert.deepEqual(
      await directionErrors("src/interop/store/groups.ts", load("../codec/jid.js")),
      [],
    );
  });

  it("refuses a dynamic import of the simulator anywhere in src/, the command line included", async function () {
    const code = `export const load = () => import("../../../simulator/main.js");\n`;
    const errors = await directionErrors("src/interop/connector/factory.ts", code);
    assert.ok(errors.length > 0, "a dynamic import of the simulator is refused in src/interop/");
    const cli = `export const load = () => import("../../simulator/embedded-gatekeeper.js");\n`;
    assert.ok((await directionErrors("src/cli/embedded-entry.ts", cli)).length > 0);
  });
});
