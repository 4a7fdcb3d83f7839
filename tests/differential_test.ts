/**
 * Between the client and the app, hotreload is invisible: the same app and
 * the same corpus of raw exchanges (tests/differential.ts), once against
 * plain `deno run` and once against hotreload, answer the same, byte for
 * byte but `Date` (status line, header lines in order and case, framing,
 * body). Steady, on 1 and 4 workers; and across a reload, on keep-alive
 * connections opened before it: requests sent while it runs, after it (sent
 * on by the old workers to the new ones: only `Connection: close` may be
 * added), and after the old workers closed their idle connections.
 */
import assert from "node:assert/strict";
import {
  type Answer,
  APP,
  CORPUS,
  type Exchange,
  makeCertificate,
  type RawConn,
  runFresh,
  type Target,
  warmUp,
  withoutAddedClose,
} from "./differential.ts";
import { freePort, Hotreload, makeProject, runCli, waitFor } from "./helpers.ts";

/** A project with the app and a certificate; its ports, for one side. */
async function project(): Promise<{ dir: string; cert: string; key: string }> {
  const dir = await makeProject({ "main.ts": APP });
  return { dir, ...await makeCertificate(dir) };
}

/** Waits until something answers on `port`. */
async function listening(port: number): Promise<void> {
  await waitFor(async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      return false;
    }
  }, `port ${port} to listen`);
}

/** Plain `deno run` of the app: the reference. */
async function withPlainDeno<T>(body: (target: Target) => Promise<T>): Promise<T> {
  const { dir, cert, key } = await project();
  const target = { port: freePort(), tlsPort: freePort(), ca: Deno.readTextFileSync(cert) };
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-N",
      "--allow-read",
      "main.ts",
      `${target.port}`,
      `${target.tlsPort}`,
      cert,
      key,
    ],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await listening(target.port);
    await listening(target.tlsPort);
    return await body(target);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** hotreload running the app with `workers` workers. */
async function withHotreload<T>(
  workers: number,
  extra: string[],
  body: (target: Target, run: Hotreload, dir: string) => Promise<T>,
): Promise<T> {
  const { dir, cert, key } = await project();
  const target = { port: freePort(), tlsPort: freePort(), ca: Deno.readTextFileSync(cert) };
  const run = new Hotreload(
    [
      "run",
      "main.ts",
      "-N",
      "--allow-read",
      "--port",
      `${target.port}`,
      "--workers",
      `${workers}`,
      "--no-watch",
      ...extra,
      "--",
      `${target.port}`,
      `${target.tlsPort}`,
      cert,
      key,
    ],
    dir,
  );
  try {
    await run.waitForReady(workers);
    return await body(target, run, dir);
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Fails with both answers printed when they differ. */
function same(name: string, got: unknown[], reference: unknown[]): void {
  assert.deepEqual(
    got,
    reference,
    `${name}: hotreload answered differently from plain deno run\n` +
      `--- deno run ---\n${JSON.stringify(reference, null, 2)}\n` +
      `--- hotreload ---\n${JSON.stringify(got, null, 2)}`,
  );
}

/** Every exchange on its own new connection. */
async function fresh(target: Target): Promise<Map<string, unknown[]>> {
  const answers = new Map<string, unknown[]>();
  for (const exchange of CORPUS) answers.set(exchange.name, await runFresh(exchange, target));
  return answers;
}

/** Every exchange with a warm-up, on a connection warmed up before: the warm-up's answer first. */
async function onWarmConnection(exchange: Exchange, target: Target): Promise<unknown[]> {
  const { conn, first } = await warmUp(exchange, target);
  try {
    return [first, ...await exchange.run(conn)];
  } finally {
    conn.close();
  }
}

const WARM = CORPUS.filter((exchange) => exchange.warmUp !== undefined);

for (const workers of [1, 4]) {
  Deno.test(`differential, steady, ${workers} worker(s): every exchange is answered as plain deno run answers it`, async () => {
    const reference = await withPlainDeno(fresh);
    const got = await withHotreload(workers, [], fresh);
    for (const exchange of CORPUS) {
      same(exchange.name, got.get(exchange.name)!, reference.get(exchange.name)!);
    }
  });
}

/** The pids of `generation`'s workers, from `status --json`. */
async function pidsOf(dir: string, generation: number): Promise<Set<number>> {
  const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
  return new Set(
    (status.children as Array<{ role: string; pid: number; generation: number }>)
      .filter((child) => child.role === "worker" && child.generation === generation)
      .map((child) => child.pid),
  );
}

/** An exchange on a connection opened before the reload. */
interface Held {
  exchange: Exchange;
  conn: RawConn;
  first: Answer;
}

for (const workers of [1, 4]) {
  Deno.test(`differential, across a reload, ${workers} worker(s): during it, after it (sent on), after the idle close`, async () => {
    const reference = new Map<string, unknown[]>();
    await withPlainDeno(async (target) => {
      for (const exchange of WARM) {
        reference.set(exchange.name, await onWarmConnection(exchange, target));
      }
    });
    await withHotreload(
      workers,
      ["--switch", "all", "--settle", "300", "--close-window", "3000"],
      async (target, _run, dir) => {
        const old = await pidsOf(dir, 1);
        const hold = () =>
          Promise.all(
            WARM.map(async (exchange) => ({ exchange, ...await warmUp(exchange, target) })),
          );
        const during = await hold();
        const after = await hold();
        const afterClose = await hold();
        const check = async ({ exchange, conn, first }: Held, where: string) => {
          const records = [first, ...await exchange.run(conn)];
          const ref = reference.get(exchange.name)!;
          same(`${exchange.name} (${where})`, withoutAddedClose(records, ref, exchange.tls), ref);
          conn.close();
          return records;
        };
        // During: each sent at its own moment across the reload.
        const reload = runCli(["reload"], dir);
        await Promise.all(during.map(async (held, i) => {
          await new Promise((resolve) => setTimeout(resolve, i * 80));
          await check(held, "sent during the reload");
        }));
        const reloaded = await reload;
        assert.equal(reloaded.code, 0, reloaded.stderr);
        const fresh = await pidsOf(dir, 2);
        assert.equal(fresh.size, workers);
        // After: the old workers are out of service; each request is sent on to new code.
        for (const held of after) {
          const records = await check(held, "sent after the switch, on an old connection");
          if (held.exchange.tls || held.exchange.name.includes("WebSocket")) continue;
          const closes = records.slice(1).filter((record) =>
            typeof record === "object" && record !== null && "headers" in record &&
            (record as Answer).headers.some((line) => /^connection: close$/i.test(line))
          );
          assert.ok(
            closes.length > 0,
            `${held.exchange.name}: no Connection: close after the switch`,
          );
          for (const pid of held.conn.pids.slice(1)) {
            assert.ok(
              fresh.has(pid),
              `${held.exchange.name}: answered by pid ${pid}, not new code`,
            );
          }
        }
        // After the close window: the old workers closed their idle connections; a new one
        // reaches new code.
        for (const held of afterClose) {
          assert.ok(
            await held.conn.closedWithin(15_000),
            `${held.exchange.name}: an idle connection of an old worker was never closed`,
          );
          assert.ok(old.size > 0);
          const records = [held.first, ...await runFresh(held.exchange, target)];
          same(
            `${held.exchange.name} (after the idle close)`,
            records,
            reference.get(held.exchange.name)!,
          );
        }
      },
    );
  });
}
