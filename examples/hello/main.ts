// A plain Deno.serve app. It needs only --allow-net (-N); mod.ts tells it which
// worker it is without any extra permission. Run it with
//   hotreload run examples/hello/main.ts -N --workers 4 --port 8000
import { workerInfo } from "../../mod.ts";

const worker = workerInfo()?.id ?? "-";

Deno.serve((_request) =>
  new Response(`hello from worker ${worker} (pid ${Deno.pid})\n`, {
    headers: { "content-type": "text/plain" },
  })
);
