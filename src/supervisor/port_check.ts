/** Checks, before anything starts, that no other process holds the port. */
import { CliError } from "../cli/errors.ts";

/**
 * Throws a one-line CliError when `port` is already bound by someone else. A
 * plain (non-reusePort) bind fails for any existing listener, reusePort or not,
 * so a foreign server that also uses SO_REUSEPORT is caught too.
 */
export function ensurePortFree(port: number): void {
  try {
    Deno.listen({ hostname: "0.0.0.0", port }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new CliError(
        `port ${port} is already in use by another process; stop it or choose another --port`,
      );
    }
    throw error;
  }
}
