/** Starting a slot's child, shared by the worker pool and the custom processes. */
import type { Child, ChildListener, ChildSpec, Spawn } from "../child/child.ts";
import type { Clock } from "./clock.ts";
import { log } from "../log/mod.ts";
import type { Backoff } from "./backoff.ts";
import { formatMs } from "./describe.ts";

/**
 * Starts the child a slot wants. When the command cannot start at all (the
 * deno binary vanished, no more processes), the slot waits out its backoff
 * like after a crash, and the failure is logged.
 */
export function spawnForSlot(
  spec: ChildSpec,
  how: { spawn: Spawn; clock: Clock; listener: ChildListener },
  slot: { backoff: Backoff; retryAt: number },
): Child | undefined {
  try {
    return how.spawn(spec, how.listener);
  } catch (error) {
    const delay = slot.backoff.failed(0);
    slot.retryAt = how.clock.now() + delay;
    log.error(
      `${spec.role}.spawn-failed`,
      `cannot start ${spec.label}: ${(error as Error).message}; retrying in ${formatMs(delay)}`,
      { role: spec.role, id: spec.id },
    );
    return undefined;
  }
}
