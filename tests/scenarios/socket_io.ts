/**
 * A socket.io server with its default transports as 4 workers, `--sticky`,
 * watching: 5 clients connect (long-polling first: every request of a
 * session must reach the same worker), then 2 edits, each awaited until every
 * client has been greeted by the new code. Runs in a network namespace
 * (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, waitFor } from "../helpers.ts";
import { npmProject } from "../frameworks.ts";
import { SOCKET_IO_CLIENTS, socketIoServer } from "../protocols.ts";

const { sticky } = JSON.parse(Deno.args[0]) as { sticky: boolean };
const CLIENTS = 5;

const dir = await npmProject({ "main.js": socketIoServer("v1"), "clients.js": SOCKET_IO_CLIENTS });
const port = freePort();
const run = new Hotreload(
  ["run", "main.js", "-A", "--port", String(port), "-w", "4", ...(sticky ? ["--sticky"] : [])],
  dir,
);
// Outside the project: a file written there every 100 ms would reload it again and again.
const scratch = await Deno.makeTempDir();
const statusFile = `${scratch}/clients.json`;
const stop = `${scratch}/stop`;
const greetings = () => {
  try {
    return JSON.parse(Deno.readTextFileSync(statusFile)).greetings as string[];
  } catch {
    return [];
  }
};
const allGreetedBy = (version: string) => {
  const seen = greetings();
  return seen.length === CLIENTS && seen.every((g) => g?.startsWith(`${version} `));
};
let clients: Promise<Deno.CommandOutput> | undefined;
const greeted: Record<string, boolean> = {};
/** When the first edit was written: connection errors before it are not a reload's. */
let firstEditAt = Infinity;
try {
  await run.waitForReady(4, 60_000);
  clients = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "clients.js", String(port), String(CLIENTS), statusFile, stop],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  for (const version of ["v1", "v2", "v3"]) {
    if (version !== "v1") {
      firstEditAt = Math.min(firstEditAt, Date.now());
      await Deno.writeTextFile(`${dir}/main.js`, socketIoServer(version));
    }
    greeted[version] = await waitFor(
      () => allGreetedBy(version),
      `every client greeted by ${version}`,
      20_000,
    ).catch(() => false);
    if (!greeted[version]) break;
  }
} finally {
  await Deno.writeTextFile(stop, "");
  const output = await clients;
  const text = new TextDecoder().decode(output?.stdout ?? new Uint8Array()).trim();
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(scratch, { recursive: true });
  const state = JSON.parse(text.split("\n").at(-1) || "{}");
  const errors = (state.errors ?? []) as Array<{ at: number; message: string }>;
  console.log(JSON.stringify({
    greeted,
    greetings: state.greetings,
    answered: state.answered,
    missed: state.missed,
    cut: state.cut,
    disconnects: state.disconnects,
    inFlight: state.inFlight,
    // Long-polling across workers without stickiness: "xhr poll error", "Session ID unknown".
    steadyErrors: errors.filter((error) => error.at < firstEditAt).map((error) => error.message),
    reloadErrors: errors.filter((error) => error.at >= firstEditAt).map((error) => error.message),
  }));
}
