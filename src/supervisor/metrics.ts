/**
 * Prometheus metrics, in the text exposition format (version 0.0.4): counters
 * and histograms the supervisor's loop updates as things happen, gauges read
 * from its state when scraped. Served by the supervisor on `--metrics`, never
 * by the workers: nothing of it runs in the request path.
 */

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
