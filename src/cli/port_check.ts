/** Checks, before anything starts, that no other process holds the port. */
import { HotreloadError } from "../errors.ts";

/**
 * Throws a one-line HotreloadError when `port` is already bound by someone else. A
 * plain (non-reusePort) bind fails for any existing listener, reusePort or not,
 * so a foreign server that also uses SO_REUSEPORT is caught too.
 */
export function ensurePortFree(port: number): void {
  try {
    Deno.listen({ hostname: "0.0.0.0", port }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new HotreloadError(
        `port ${port} is already in use by another process; stop it or choose another --port`,
      );
    }
    throw error;
  }
}
