// Server-sent events across reloads. Each stream ticks once a second; when
// its worker starts to drain (a save, `hotreload reload`, a stop), the stream
// sends a last "reconnect" event and ends cleanly, and EventSource clients
// reconnect to a new worker. Run it with
//   hotreload run examples/sse/main.ts -N --workers 2 --port 8000
// and watch `curl -N localhost:8000` while you edit this file.
import { drainSignal, workerInfo } from "../../mod.ts";

const worker = workerInfo()?.id ?? "-";

Deno.serve((_request) => {
  let tick: number | undefined;
  const events = new ReadableStream<string>({
    start(controller) {
      const end = () => {
        clearInterval(tick);
        controller.enqueue("event: reconnect\ndata: this worker is draining\n\n");
        controller.close();
      };
      if (drainSignal().aborted) return end();
      controller.enqueue(`data: hello from worker ${worker} (pid ${Deno.pid})\n\n`);
      tick = setInterval(() => controller.enqueue(`data: ${new Date().toISOString()}\n\n`), 1000);
      drainSignal().addEventListener("abort", end, { once: true });
    },
    cancel() {
      clearInterval(tick);
    },
  });
  return new Response(events.pipeThrough(new TextEncoderStream()), {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
});
