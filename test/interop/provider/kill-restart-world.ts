import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PhoneNumber } from "../../../src/util/ids.js";
import { BRIDGE_DOMAIN, SECRETS } from "./fake-gatekeeper.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const TOKEN = "kill-restart-admin-token";

/** A port free right now; the simulator binds it again after every restart. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === "string") reject(new Error("no port"));
        else resolve(address.port);
      });
    });
  });
}

export interface ReceivedEntry {
  kind: string;
  data: { originId?: string; from?: string; content?: { kind: string; text?: string }[] };
}

/**
 * The gatekeeper simulator as a child process (simulator/cli.ts), so that the test can crash it
 * with a real SIGKILL; the simulated WhatsApp user is driven through the admin HTTP API.
 */
export class SimulatorProcess {
  private child: ChildProcess | undefined;
  private output = "";

  constructor(
    private readonly options: {
      dataDir: string;
      componentPort: number;
      adminPort: number;
      limits: Record<string, number>;
    },
  ) {}

  get service(): string {
    return `xmpp://127.0.0.1:${this.options.componentPort}`;
  }

  private get adminUrl(): string {
    return `http://127.0.0.1:${this.options.adminPort}`;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, ["--import", "tsx", "simulator/cli.ts"], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        SIM_ADMIN_TOKEN: TOKEN,
        SIM_DATA_DIR: this.options.dataDir,
        SIM_COMPONENT_PORT: String(this.options.componentPort),
        SIM_ADMIN_PORT: String(this.options.adminPort),
        SIM_LIMITS: JSON.stringify(this.options.limits),
        SIM_LOG_LEVEL: "warn",
        SIM_PROVIDERS: JSON.stringify([
          {
            id: "matrix-bridge-example",
            name: "Example Matrix Bridge",
            domain: BRIDGE_DOMAIN,
            secret: SECRETS[BRIDGE_DOMAIN],
          },
        ]),
      },
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-4000);
    });
    this.child = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`the simulator exited with ${child.exitCode}: ${this.output}`);
      }
      try {
        const res = await fetch(`${this.adminUrl}/users`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`the simulator did not start: ${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** SIGKILL: no shutdown handler runs, sockets are reset by the kernel, nothing is flushed. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
    this.child = undefined;
  }

  async admin(method: string, route: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.adminUrl}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text}`);
    return text.length === 0 ? undefined : (JSON.parse(text) as unknown);
  }

  async createUser(phone: PhoneNumber, devices: number): Promise<void> {
    await this.admin("POST", "/users", { phone, devices });
  }

  async sendText(phone: PhoneNumber, to: string, text: string): Promise<void> {
    await this.admin("POST", `/users/${phone.slice(1)}/send`, { type: "text", to, text });
  }

  async received(phone: PhoneNumber, kind: string): Promise<ReceivedEntry[]> {
    const answer = (await this.admin(
      "GET",
      `/users/${phone.slice(1)}/received?kind=${encodeURIComponent(kind)}`,
    )) as { entries: ReceivedEntry[] };
    return answer.entries;
  }
}
