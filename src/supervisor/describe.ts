/** How the supervisor words durations and crashes in its log. */
import type { Child } from "../child/child.ts";

/** `812 ms` or `3.2 s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * When a worker exited, for a failed start: `before it was ready`, or `312 ms
 * after it became ready, within the 1000 ms settle window`.
 */
export function whenExited(child: Child, settleMs: number): string {
  if (child.readyAt === undefined) return "before it was ready";
  // uptimeMs() is measured from the start; readyAt - startedAt is how long becoming ready took.
  const since = child.uptimeMs() - (child.readyAt - child.startedAt);
  return `${Math.round(since)} ms after it became ready, within the ${settleMs} ms settle window`;
}

/** `; last output:` and the lines that explain a crash, or nothing. */
export function formatTail(child: Child): string {
  const lines = lastWords(child.tail.lines());
  return lines.length === 0 ? "" : `; last output:\n  ${lines.join("\n  ")}`;
}

/**
 * The lines that explain a crash: from the first error message among the last
 * lines on (Deno prints the error, a code frame, then the stack; a type check
 * prints each TSxxxx error, then "Type checking failed"), else the last lines.
 */
export function lastWords(tail: string[]): string[] {
  // deno-lint-ignore no-control-regex
  let lines = tail.map((line) => line.replace(/\x1b\[[0-9;]*m/g, ""));
  const backtrace = lines.findIndex((line) => line.startsWith("Stack backtrace:"));
  if (backtrace !== -1) lines = lines.slice(0, backtrace);
  while (lines.length > 0 && lines.at(-1)!.trim() === "") lines.pop();
  const recent = lines.slice(-15);
  const errorAt = recent.findIndex((line) =>
    /^(error\b|Uncaught|TS\d+ \[ERROR\]|\w*Error\b)/.test(line.trim())
  );
  return errorAt === -1 ? lines.slice(-5) : recent.slice(errorAt, errorAt + 8);
}
