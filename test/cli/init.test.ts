import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { load as loadYaml } from "js-yaml";
import { initDirectory } from "../../src/cli/init.js";
import { loadConfig } from "../../src/config/load.js";
import { readRegistration } from "../../src/cli/registration-file.js";
import { runCli } from "../helpers/cli.js";

const FLAGS = ["--homeserver-url", "http://127.0.0.1:8008", "--domain", "hs.example"];

describe("init", function () {
  this.timeout(60_000);
  let cwd: string;
  let elsewhere: string;
  beforeEach(async function () {
    cwd = await mkdtemp(path.join(tmpdir(), "mwi-init-"));
    elsewhere = await mkdtemp(path.join(tmpdir(), "mwi-init-dir-"));
  });
  afterEach(async function () {
    await rm(cwd, { recursive: true, force: true });
    await rm(elsewhere, { recursive: true, force: true });
  });

  const mode = async (file: string) => (await stat(file)).mode & 0o777;

  it("writes config, registration, key and database under the directory, all owner-only, and keeps them on a second run", async function () {
    const first = await runCli(["init", "-d", elsewhere, ...FLAGS], { cwd });
    assert.equal(first.code, 0, first.stderr);
    for (const name of ["config.yaml", "registration.yaml", "encryption.key", "bridge.db"]) {
      assert.equal(await mode(path.join(elsewhere, name)), 0o600, `${name} is owner-only`);
    }
    const config = await loadConfig(path.join(elsewhere, "config.yaml"));
    assert.equal(config.encryption.key_file, path.join(elsewhere, "encryption.key"));
    assert.equal(config.database.uri, path.join(elsewhere, "bridge.db"));
    assert.equal(config.interop.embedded_data_dir, path.join(elsewhere, "simulator"));
    const registration = await readFile(path.join(elsewhere, "registration.yaml"), "utf8");
    const valid = await runCli(["-c", path.join(elsewhere, "config.yaml"), "validate-config"], {
      cwd,
    });
    assert.equal(valid.code, 0, valid.stderr);
    assert.match(first.stdout, new RegExp(`give ${path.join(elsewhere, "registration.yaml")}`));

    const second = await runCli(["init", "-d", elsewhere], { cwd });
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout, /created/);
    assert.equal(await readFile(path.join(elsewhere, "registration.yaml"), "utf8"), registration);
  });

  it("configures the given homeserver and lets its own users in, with a registration for that domain", async function () {
    const result = await runCli(["init", "-d", "data", ...FLAGS], { cwd });
    assert.equal(result.code, 0, result.stderr);
    const config = await loadConfig(path.join(cwd, "data/config.yaml"));
    assert.equal(config.homeserver.url, "http://127.0.0.1:8008");
    assert.equal(config.homeserver.domain, "hs.example");
    assert.equal(config.permissions["hs.example"], "user");
    assert.equal(config.simulator.web, true, "the page to play the WhatsApp side is on");
    const registration = await readRegistration(path.join(cwd, "data/registration.yaml"));
    for (const namespace of registration.namespaces.users) {
      assert.match(namespace.regex, /:hs\\\.example\$$/);
    }
  });

  it("asks for the homeserver URL and domain when they are not given, suggesting the URL's host", async function () {
    const questions: string[] = [];
    const answers = ["https://matrix.example.net", ""];
    await initDirectory(
      elsewhere,
      { homeserverUrl: undefined, domain: undefined },
      (question, suggestion) => {
        questions.push(`${question} [${suggestion ?? ""}]`);
        const answer = answers.shift() ?? "";
        return Promise.resolve(answer === "" ? (suggestion ?? "") : answer);
      },
    );
    assert.equal(questions.length, 2);
    assert.match(questions[1] ?? "", /\[matrix\.example\.net\]$/);
    const config = await loadConfig(path.join(elsewhere, "config.yaml"));
    assert.equal(config.homeserver.url, "https://matrix.example.net");
    assert.equal(config.homeserver.domain, "matrix.example.net");
  });

  it("without a terminal and without the flags, says which flags it needs and writes nothing", async function () {
    const result = await runCli(["init", "-d", "data"], { cwd });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: init needs the homeserver: pass --homeserver-url/);
    await assert.rejects(stat(path.join(cwd, "data/config.yaml")));
  });

  it("-r and the run read the registration beside the config when -f is not given", async function () {
    const init = await runCli(["init", "-d", "data", ...FLAGS], { cwd });
    assert.equal(init.code, 0, init.stderr);
    await rm(path.join(cwd, "data/registration.yaml"));
    const reg = await runCli(["-r", "-c", "data/config.yaml"], { cwd });
    assert.equal(reg.code, 0, reg.stderr);
    assert.match(reg.stdout, /data\/registration\.yaml/);
    assert.ok(loadYaml(await readFile(path.join(cwd, "data/registration.yaml"), "utf8")));
  });

  it("replacing a registration or key with --force leaves it owner-only", async function () {
    await writeFile(
      path.join(cwd, "config.yaml"),
      "homeserver:\n  url: http://127.0.0.1:1\n  domain: example.org\n",
    );
    for (const args of [
      ["-r", "-f", "reg.yaml"],
      ["generate-key", "-f", "key"],
    ]) {
      const file = path.join(cwd, args[2] ?? "");
      await writeFile(file, "world-readable\n");
      await chmod(file, 0o644);
      const result = await runCli([...args, "--force"], { cwd });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await mode(file), 0o600, `${args.join(" ")} --force`);
    }
  });
});
