import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// Resolved here, not by the child: the child runs in a temporary directory without node_modules.
// Resolved with require's resolver: import.meta.resolve("tsx") runs the tsx loader's resolve
// hook, and after matrix-js-sdk was loaded in the same process (mocha loads test/e2e before
// test/faults) that made matrix-js-sdk evaluate a second time ("Multiple entrypoints detected").
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the command-line program from the sources (through tsx) in `cwd`, as an operator would run
 * the installed one: a separate process, its exit code, and what it printed.
 */
export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /**
   * Called with everything printed to stderr so far, each time more arrives; once it resolves
   * true, the process gets SIGTERM (a long-running command that is then stopped as an admin would).
   */
  stopWhen?: (stderr: string) => Promise<boolean> | boolean;
}

export function runCli(args: readonly string[], options: RunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", TSX, `${ROOT}test/helpers/cli-entry.ts`, ...args],
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    let stopping = false;
    let checking = false;
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const check = (): void => {
      if (stopping || checking || options.stopWhen === undefined) return;
      // One check at a time: a check may probe the running bridge, and a second one started by a
      // later log line would race the shutdown the first one triggers. Output that arrived during
      // a check that said "not yet" is looked at again right after it.
      checking = true;
      const seen = stderr.length;
      void Promise.resolve(options.stopWhen(stderr)).then((stop) => {
        checking = false;
        if (stop) {
          stopping = true;
          child.kill("SIGTERM");
        } else if (stderr.length !== seen) {
          check();
        }
      }, reject);
    };
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      check();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`CLI ${args.join(" ")} timed out; stderr: ${stderr}`));
    }, options.timeoutMs ?? 90_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
