/**
 * hotreload's own stack frames in a child's output: the runtime modules it
 * preloads into every worker and custom process (src/runtime/, or their
 * copy beside a compiled binary) show up in the app's stacks (an Express
 * app whose `listen` callback throws goes through node_servers.ts first).
 * They say nothing about the app, and would lead a reader into hotreload:
 * they are not shown, nor taken for the error's place in its summary.
 */

/** True when `line` is a stack frame (`    at ...`) in the runtime modules under `runtimeBase`. */
export function isOwnFrame(line: string, runtimeBase: string): boolean {
  return /^\s+at\s/.test(line) && line.includes(runtimeBase);
}
