/**
 * `deno run -A bench/processes.ts <n> <port>`: n plain `deno run` processes
 * of a hello app sharing `port` (reusePort), what hotreload's n workers are
 * without hotreload: the process model's own reference beside `deno serve
 * --parallel`'s threads (bench/throughput_paired.ts). Ends them on SIGTERM.
 */
const [count, port] = Deno.args.map(Number);
const app = await Deno.makeTempFile({ prefix: "hotreload-bench-", suffix: ".ts" });
await Deno.writeTextFile(
  app,
  `Deno.serve({ port: ${port}, reusePort: true }, () => new Response("hello"));\n`,
);
const children = Array.from({ length: count }, () =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", "--unstable-net", app],
    stdin: "null",
  }).spawn());
Deno.addSignalListener("SIGTERM", () => {
  for (const child of children) child.kill("SIGTERM");
});
await Promise.all(children.map((child) => child.status));
await Deno.remove(app);
