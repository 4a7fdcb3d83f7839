/** Request loops for tests under load, and waiting for a new body to be served. */
import { waitFor } from "./helpers.ts";

/**
 * Keep-alive clients (as a proxy or load balancer in front of the workers
 * would be) sending requests until stopped; counts bodies and failures.
 * `fresh`: a new connection per request instead (health checkers, curl
 * scripts, unpooled service calls).
 */
export function requestLoop(port: number, clients = 8, { fresh = false, path = "/" } = {}) {
  const bodies: Record<string, number> = {};
  const failures: string[] = [];
  let ok = 0;
  let running = true;
  const client = Deno.createHttpClient(fresh ? { poolMaxIdlePerHost: 0 } : {});
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, { client });
        const body = await response.text();
        if (response.ok) {
          ok++;
          bodies[body] = (bodies[body] ?? 0) + 1;
        } else {
          failures.push(`status ${response.status}`);
        }
      } catch (error) {
        failures.push(`${error} ${(error as Error).cause ?? ""}`.trim());
      }
    }
  });
  return {
    /** The counts so far, while the clients go on. */
    peek() {
      return { ok, failures: [...failures], bodies: { ...bodies } };
    },
    async stop() {
      if (running) {
        running = false;
        await Promise.all(loops);
        client.close();
      }
      return { ok, failures, bodies };
    },
  };
}

/** Waits until `n` responses in a row, each on a fresh connection, carry `body`. */
export async function waitForBody(port: number, body: string, n = 10): Promise<void> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  let streak = 0;
  try {
    await waitFor(async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/`, { client })).text();
      streak = text === body ? streak + 1 : 0;
      return streak >= n;
    }, `${n} responses in a row saying "${body}"`);
  } finally {
    client.close();
  }
}
