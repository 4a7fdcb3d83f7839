/**
 * Deno's own `serve`, `listen` and `listenTls`, read before the worker's
 * preload puts its wrappers in their place, and before a warm spare blocks
 * reading its handshake (child_runtime.ts). The first read of `Deno.serve`
 * loads Deno's HTTP layer: 9 ms here, which a spare now pays while it waits
 * instead of after it was released (worker_preload.ts imports this module
 * before child_runtime.ts).
 *
 * Only relative, dependency-free imports (worker_preload.ts says why).
 *
 * @module
 */

/** `Deno.serve` as Deno made it. */
export const denoServe = Deno.serve;
/** `Deno.listen` as Deno made it. */
export const denoListen = Deno.listen;
/** `Deno.listenTls` as Deno made it. */
export const denoListenTls = Deno.listenTls;
