/**
 * What every child runtime (worker and custom-process preloads) shares: the
 * control line to the supervisor, noticing that the supervisor is gone,
 * reading its messages, running shutdown hooks, and leaving no grandchild
 * behind. Dependency-free: it runs with the user's permissions and deno.json.
 */
import { forEachLine } from "./lines.ts";
import {
  type ChildMessage,
  encodeFrame,
  type Handshake,
  type SupervisorMessage,
} from "./protocol.ts";

const encoder = new TextEncoder();

/** Reads exactly `bytes.length` bytes from stdin, synchronously; false at EOF. */
function readExactSync(bytes: Uint8Array): boolean {
  let got = 0;
  while (got < bytes.length) {
    const n = Deno.stdin.readSync(bytes.subarray(got));
    if (n === null || n === 0) return false;
    got += n;
  }
  return true;
}

/**
 * Reads the supervisor's handshake from stdin: a length line, then JSON. It
 * is read synchronously and exactly (byte by byte for the short length line),
 * so no async read stays pending (that would keep the entry from running)
 * and no later message on stdin is consumed.
 */
function readHandshake(): Handshake<unknown> {
  const one = new Uint8Array(1);
  let length = "";
  while (readExactSync(one) && one[0] !== 10 && length.length < 12) {
    length += String.fromCharCode(one[0]);
  }
  const json = new Uint8Array(Number(length) || 0);
  if (!/^\d+$/.test(length) || !readExactSync(json)) {
    console.error("hotreload: this process must be started by a hotreload supervisor");
    Deno.exit(70);
  }
  return JSON.parse(new TextDecoder().decode(json));
}

const handshake = readHandshake();

/** This child's settings, as the supervisor sent them. */
export function childSettings<S>(): S {
  return handshake.settings as S;
}

/** When the supervisor sent the handshake (ms since the epoch): its deadlines count from then. */
export function handshakeSentAt(): number {
  return handshake.sentAt;
}

/** Writes one control frame on stderr (no permission needed). */
export function tell(message: ChildMessage): void {
  // Once the supervisor is gone its pipe is broken (EPIPE): nobody listens any
  // more, and an orphan must still drain and run its hooks, so never throw.
  if (supervisorPipeBroken) return;
  const bytes = encoder.encode(encodeFrame(handshake.nonce, message));
  let written = 0;
  try {
    while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
  } catch {
    supervisorPipeBroken = true;
  }
}

/** True once a frame could not be written: the supervisor's end of the pipe is closed. */
let supervisorPipeBroken = false;

/**
 * Says "alive" every `ms` from the event loop: a loop blocked by a busy
 * handler goes quiet, and the supervisor replaces the child after --timeout.
 * Unref'd: it never keeps a finished process alive.
 */
export function heartbeat(ms: number): void {
  const timer = setInterval(() => tell({ t: "alive" }), ms);
  Deno.unrefTimer(timer);
}

/**
 * Calls `onGone` once the supervisor has died (even by SIGKILL): our parent
 * pid changes. An unref'd check, so it works even when the entry's top-level
 * await never finishes, and never keeps the process alive by itself.
 */
export function watchParent(onGone: () => void): void {
  // The handshake's pid, not our parent at start: a supervisor killed while
  // this child was starting is already not our parent when this runs.
  const supervisor = handshake.supervisor;
  const timer = setInterval(() => {
    if (Deno.ppid !== supervisor) onGone();
  }, 250);
  Deno.unrefTimer(timer);
}

/**
 * Reads the supervisor's JSON lines from stdin; `onEnd` runs at EOF (the
 * supervisor is gone). Must be started from the `load` event: a stdin read
 * started while the preload runs keeps the entry from ever running.
 */
export async function readSupervisorMessages(
  onMessage: (message: SupervisorMessage) => void,
  onEnd: () => void,
): Promise<void> {
  // A broken pipe ends the stream like EOF; a line cut short (the supervisor
  // died mid-write) is not a message.
  await forEachLine(Deno.stdin.readable, (line) => {
    let message: SupervisorMessage;
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    onMessage(message);
  });
  onEnd();
}

/** Runs shutdown hooks one after another; a failing hook is reported and the next still runs. */
export async function runHooks(hooks: Array<() => unknown>): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      console.error("onShutdown hook failed:", error);
    }
  }
}

/**
 * Shuts the child down once its supervisor is gone (`watchParent`, or any
 * other sign such as stdin's end, through `orphan`): `shutDown` runs as for a
 * stop, with a grace period of our own, since nobody will kill us after it.
 * `exit` ends every shutdown: an orphan takes its process group along.
 */
export function whenOrphaned(graceMs: number, shutDown: () => void, serveMs = 0) {
  let orphaned = false;
  let deadline = false;
  const orphan = () => {
    if (orphaned) return;
    orphaned = true;
    // A worker keeps serving for a while, waiting for a successor to adopt it
    // (it then gets SIGTERM and drains), else it drains on its own.
    setTimeout(shutDown, serveMs);
  };
  watchParent(orphan);
  return {
    orphan,
    /** A drain began: an orphan exits within `graceMs` whatever is still open. */
    draining() {
      if (!orphaned || deadline) return;
      deadline = true;
      setTimeout(exitOrphaned, graceMs);
    },
    exit: (): never => orphaned ? exitOrphaned() : Deno.exit(0),
  };
}

/**
 * Exits when no supervisor is left to clean up after us: first our whole
 * process group (grandchildren included) when the app may run processes at all.
 */
function exitOrphaned(): never {
  if (Deno.permissions.querySync({ name: "run" }).state === "granted") {
    try {
      Deno.kill(-Deno.pid, "SIGKILL");
    } catch { /* not a group leader, or nothing left */ }
  }
  Deno.exit(0);
}
