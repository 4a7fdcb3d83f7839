// A queue consumer that runs beside the hello app as a custom process:
//   hotreload run examples/hello/main.ts -N --workers 2 --port 8000 \
//     --process queue=examples/queue/consumer.ts
// Feed it jobs from another terminal:
//   hotreload send queue '{"job": "resize", "id": 7}'
// Edit this file and save: it restarts with the new code; the workers do not import it and
// keep serving (a save of mod.ts, which both import, reloads the workers, then restarts it).
import { defineProcess } from "../../mod.ts";

const jobs: unknown[] = [];

export default defineProcess({
  async run(ctx) {
    ctx.log(`consumer ${ctx.name}#${ctx.index} waiting for jobs`);
    while (!ctx.signal.aborted) {
      const job = jobs.shift();
      if (job !== undefined) ctx.log("processed", JSON.stringify(job));
      await new Promise((resolve) => setTimeout(resolve, job === undefined ? 200 : 0));
    }
  },
  onMessage(message) {
    jobs.push(message);
  },
  onShutdown() {
    console.log(`consumer stopping with ${jobs.length} job(s) left in memory`);
  },
  onException(error) {
    console.error("consumer crashed:", error);
  },
});
