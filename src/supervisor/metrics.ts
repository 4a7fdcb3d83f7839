/**
 * Prometheus metrics, in the text exposition format (version 0.0.4): counters
 * and histograms the supervisor's loop updates as things happen, gauges read
 * from its state when scraped. Served by the supervisor on `--metrics`, never
 * by the workers: nothing of it runs in the request path.
 */

import { ROW_STATES } from "../control/protocol.ts";

type Labels = Record<string, string | number>;

/** Label values escaped as the format wants: backslash, double quote, newline. */
function labelText(labels: Labels): string {
  const pairs = Object.entries(labels).map(([key, value]) =>
    `${key}="${String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function number(value: number): string {
  return Number.isFinite(value) ? String(value) : value > 0 ? "+Inf" : "NaN";
}

/** A counter with labels. */
class Counter {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.#values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.#values.set(key, entry);
  }

  family(): ScrapedFamily {
    return {
      name: this.name,
      type: "counter",
      help: this.help,
      samples: [...this.#values.values()],
    };
  }
}

/** A histogram of seconds, without labels. */
class Histogram {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {
    this.#counts = buckets.map(() => 0);
  }

  observe(seconds: number): void {
    this.#sum += seconds;
    this.#count++;
    this.buckets.forEach((le, i) => {
      if (seconds <= le) this.#counts[i]++;
    });
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((le, i) => {
      lines.push(`${this.name}_bucket{le="${le}"} ${this.#counts[i]}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.name}_sum ${number(this.#sum)}`, `${this.name}_count ${this.#count}`);
    return lines;
  }
}

/** One family read from the supervisor's state when scraped. */
export interface ScrapedFamily {
  name: string;
  type: "gauge" | "counter";
  help: string;
  samples: Array<{ labels?: Labels; value: number }>;
}

/** The supervisor's state at a scrape, as the gauges need it. */
export interface MetricsSnapshot {
  version: string;
  handover: string;
  generation: number;
  desiredWorkers: number;
  /** The state of every worker row (spares and empty slots included). */
  workerStates: string[];
  /** Every live worker and custom process: its labels, requests (workers), and usage if sampled. */
  children: Array<{
    labels: Labels;
    requests?: number;
    usage?: { rssBytes: number; cpuSeconds: number };
  }>;
  droppedLines: number;
  supervisorRssBytes: number;
}

/** A worker's row in `status` is in one of these (only a custom process shows "stopped"). */
const WORKER_STATES = ROW_STATES.filter((state) => state !== "stopped");

/** The gauges (and reported counters) a scrape reads from the supervisor's state. */
export function scrapedFamilies(snapshot: MetricsSnapshot): ScrapedFamily[] {
  const { children } = snapshot;
  const gauge = (name: string, help: string, value: number): ScrapedFamily => ({
    name,
    type: "gauge",
    help,
    samples: [{ value }],
  });
  return [
    {
      name: "hotreload_build_info",
      type: "gauge",
      help: "Always 1; the labels say which hotreload and Deno run.",
      samples: [{ labels: { version: snapshot.version, deno: Deno.version.deno }, value: 1 }],
    },
    {
      name: "hotreload_handover_info",
      type: "gauge",
      help: "Always 1; mode says how new connections avoid a draining worker (ebpf, kernel, none).",
      samples: [{ labels: { mode: snapshot.handover }, value: 1 }],
    },
    gauge(
      "hotreload_generation",
      "The newest generation of code (1 at start, +1 per reload).",
      snapshot.generation,
    ),
    gauge(
      "hotreload_workers_desired",
      "How many workers the supervisor keeps.",
      snapshot.desiredWorkers,
    ),
    {
      name: "hotreload_workers",
      type: "gauge",
      help: "Workers by state (a spare waits to be released as one).",
      samples: WORKER_STATES.map((state) => ({
        labels: { state },
        value: snapshot.workerStates.filter((s) => s === state).length,
      })),
    },
    {
      name: "hotreload_worker_requests_total",
      type: "counter",
      help: "Requests served, per worker process (as last reported, at most a second old).",
      samples: children.flatMap(({ labels, requests }) =>
        requests === undefined ? [] : [{ labels, value: requests }]
      ),
    },
    {
      name: "hotreload_child_resident_memory_bytes",
      type: "gauge",
      help: "Resident memory of each worker and custom process.",
      samples: children.flatMap(({ labels, usage }) =>
        usage ? [{ labels, value: usage.rssBytes }] : []
      ),
    },
    {
      name: "hotreload_child_cpu_seconds_total",
      type: "counter",
      help: "CPU time (user + system) of each worker and custom process.",
      samples: children.flatMap(({ labels, usage }) =>
        usage ? [{ labels, value: usage.cpuSeconds }] : []
      ),
    },
    {
      name: "hotreload_dropped_output_lines_total",
      type: "counter",
      help: "Log and child-output lines dropped because the supervisor's stdout or stderr failed.",
      samples: [{ value: snapshot.droppedLines }],
    },
    gauge(
      "hotreload_supervisor_resident_memory_bytes",
      "Resident memory of the supervisor.",
      snapshot.supervisorRssBytes,
    ),
  ];
}

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What the supervisor counts as it runs. */
export class Metrics {
  readonly workerRestarts = new Counter(
    "hotreload_worker_restarts_total",
    "Workers started to replace another, by cause (crash, recycle, reload, timeout).",
  );
  readonly processRestarts = new Counter(
    "hotreload_process_restarts_total",
    "Custom-process instances started again after the first start, by process.",
  );
  readonly reloads = new Counter(
    "hotreload_reloads_total",
    "Rolling reloads, by outcome (done or aborted).",
  );
  readonly reloadDuration = new Histogram(
    "hotreload_reload_duration_seconds",
    "How long rolling reloads took, from their start to their end.",
    SECONDS,
  );
  readonly changeToReady = new Histogram(
    "hotreload_change_to_ready_seconds",
    "From a batch of file changes to every worker of the new generation ready.",
    SECONDS,
  );

  /** The exposition text: the `scraped` families, then these counters and histograms. */
  render(scraped: ScrapedFamily[]): string {
    const lines: string[] = [];
    const counters = [this.workerRestarts, this.processRestarts, this.reloads];
    for (const family of [...scraped, ...counters.map((counter) => counter.family())]) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
      for (const sample of family.samples) {
        lines.push(`${family.name}${labelText(sample.labels ?? {})} ${number(sample.value)}`);
      }
    }
    lines.push(...this.reloadDuration.render(), ...this.changeToReady.render());
    return lines.join("\n") + "\n";
  }
}
