// The dashboard page: listens to /events (one DashboardUpdate per event, see contract.ts) and
// draws the instance, its processes, charts of the workers, the reload timeline and the output.
// No framework and no build step: this file is served as it is. Every string from an update is
// data, and output lines come from the app (an HTTP client can make it print anything): the DOM
// is built with textContent and attributes only, never from markup.

const UPDATE_TYPE = "hotreload.dashboard.update";
const UPDATE_VERSION = 1;
const SVG = "http://www.w3.org/2000/svg";
/** Without an update for this long, the page says the view is stale. */
const STALE_MS = 3_000;
/** Two points further apart than this are not joined in a chart (nobody sampled between). */
const GAP_MS = 5_000;

const $ = (id) => document.getElementById(id);

/** An element with a class and a text, both optional. */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

// ---- Formats ------------------------------------------------------------------------------

function mb(bytes) {
  return bytes === null || bytes === undefined ? "-" : (bytes / 2 ** 20).toFixed(1);
}

function fixed(value, digits = 1) {
  return value === null || value === undefined ? "-" : value.toFixed(digits);
}

/** `3m12s`, `41s`, `2h05m`, as `hotreload status` writes them. */
function uptime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** Local time of day, `14:03:07`. */
function clock(at) {
  const d = new Date(at);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0"))
    .join(":");
}

/** A worker slot's colour class: the same slot keeps its colour across reloads. */
function colour(id) {
  const n = typeof id === "number" ? id : [...String(id)].reduce((h, c) => h + c.charCodeAt(0), 0);
  return `c${Math.abs(n) % 8}`;
}

// ---- Instance -----------------------------------------------------------------------------

function renderInstance(update) {
  const s = update.instance;
  $("instance-name").textContent = s.name;
  document.title = `${s.name} · hotreload`;
  const others = (s.boundPorts ?? []).filter((port) => port !== s.port);
  const port = s.port === null
    ? (others.length ? others.join(", ") : "-")
    : `${s.port}${others.length ? ` (also ${others.join(", ")})` : ""}`;
  const facts = [
    ["entry", "entry", s.entry],
    ["port", "port", port],
    ["workers", "workers", s.workers],
    ["generation", "generation", s.generation],
    ["uptime", "up", uptime(s.uptimeMs)],
    ["handover", "handover", s.handover ?? "-"],
    ["watcher", "watching", s.watcher ?? "off"],
    ["phase", "phase", s.reloading ? `${s.phase}, reloading` : s.phase],
    ["pid", "supervisor pid", s.pid],
    ["rss", "memory", `${mb(s.rssBytes)} MB`],
  ];
  $("facts").replaceChildren(...facts.map(([key, label, value]) => {
    const item = el("div");
    const dd = el("dd", "", value);
    dd.dataset.fact = key;
    item.append(el("dt", "", label), dd);
    return item;
  }));
  const last = s.lastReload;
  $("last-reload").textContent = last
    ? `last reload (${clock(Date.parse(last.at))}): ${last.message}`
    : "no reload yet";
}

// ---- Processes ----------------------------------------------------------------------------

function renderRows(children) {
  $("rows").replaceChildren(...children.map((row) => {
    const tr = el("tr");
    tr.dataset.role = row.role;
    if (row.pid !== null) tr.dataset.pid = String(row.pid);
    const state = row.open === null ? row.state : `${row.state} (${row.open} open)`;
    const cells = [
      ["role", row.role],
      ["name", row.id],
      ["pid num", row.pid ?? "-"],
      [`state state-${row.state}`, state],
      ["gen num", row.generation ?? "-"],
      ["uptime num", uptime(row.uptimeMs)],
      ["restarts num", row.restarts],
      ["rss num", mb(row.rssBytes)],
      ["cpu num", fixed(row.cpuPercent)],
      ["rps num", fixed(row.requestsPerSecond)],
      ["requests num", row.requests ?? "-"],
    ];
    tr.append(...cells.map(([className, text]) => el("td", className, text)));
    return tr;
  }));
}

// ---- Charts -------------------------------------------------------------------------------

/** The smallest of 1, 2, 2.5, 5 × 10^n at or above `value`, so the axis reads well. */
function niceCeil(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((step) => step * power).find((nice) => nice >= value);
}

/** A series whose process is no longer a child (replaced, or exited): drawn dashed. */
function gone(update, series) {
  return !update.children.some((row) => row.pid === series.pid);
}

function renderChart(chart, update, pick, unit) {
  const width = Math.max(200, Math.round(chart.clientWidth || 600));
  const height = Math.max(100, Math.round(chart.clientHeight || 180));
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const left = 48, right = 10, top = 10, bottom = 22;
  const windowMs = update.history.windowMs;
  const start = update.at - windowMs;
  const x = (at) => left + ((at - start) / windowMs) * (width - left - right);
  const series = update.history.series;
  let max = 0;
  for (const s of series) {
    for (const value of pick(s)) if (value !== null && value > max) max = value;
  }
  const yMax = niceCeil(max);
  const y = (value) => top + (1 - value / yMax) * (height - top - bottom);
  const nodes = [];
  for (const fraction of [0, 0.5, 1]) {
    const value = yMax * fraction;
    nodes.push(
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y(value), y2: y(value) }),
    );
    const label = svg("text", {
      class: "axis",
      x: left - 6,
      y: y(value) + 4,
      "text-anchor": "end",
    });
    label.textContent = value >= 100 ? value.toFixed(0) : String(Number(value.toFixed(1)));
    nodes.push(label);
  }
  const minutes = Math.round(windowMs / 60_000);
  for (let m = minutes; m >= 0; m--) {
    const label = svg("text", {
      class: "axis",
      x: x(update.at - m * 60_000),
      y: height - 6,
      "text-anchor": m === minutes ? "start" : m === 0 ? "end" : "middle",
    });
    label.textContent = m === 0 ? "now" : `−${m} min`;
    nodes.push(label);
  }
  for (const reload of update.reloads) {
    if (reload.startedAt < start) continue;
    const mark = svg("line", {
      class: "reload-mark",
      x1: x(reload.startedAt),
      x2: x(reload.startedAt),
      y1: top,
      y2: height - bottom,
    });
    const title = svg("title", {});
    title.textContent = `reload to generation ${reload.generation}`;
    mark.append(title);
    nodes.push(mark);
  }
  for (const s of series) {
    const values = pick(s);
    let d = "";
    let previous;
    for (let i = 0; i < s.at.length; i++) {
      const value = values[i];
      if (value === null) {
        previous = undefined;
        continue;
      }
      const joined = previous !== undefined && s.at[i] - previous <= GAP_MS;
      d += `${joined ? "L" : "M"}${x(s.at[i]).toFixed(1)} ${y(value).toFixed(1)}`;
      previous = s.at[i];
    }
    if (d === "") continue;
    const old = gone(update, s);
    const path = svg("path", { class: `series ${colour(s.id)}${old ? " old" : ""}`, d });
    path.dataset.pid = String(s.pid);
    const title = svg("title", {});
    title.textContent = `worker ${s.id}, pid ${s.pid} (${unit})`;
    path.append(title);
    nodes.push(path);
  }
  chart.replaceChildren(...nodes);
}

function renderCharts(update) {
  renderChart($("chart-rps"), update, (s) => s.requestsPerSecond, "requests/s");
  renderChart(
    $("chart-rss"),
    update,
    (s) => s.rssBytes.map((bytes) => bytes === null ? null : bytes / 2 ** 20),
    "MB",
  );
  $("legend").replaceChildren(...update.history.series.map((s) => {
    const old = gone(update, s);
    const item = el("li", `${colour(s.id)}${old ? " old" : ""}`);
    item.append(el("span", "", `worker ${s.id} · pid ${s.pid} · gen ${s.generation ?? "-"}`));
    return item;
  }));
}

// ---- Reload timeline ----------------------------------------------------------------------

function trigger(entry) {
  switch (entry.trigger) {
    case "files": {
      if (entry.files.length === 0) return "files changed";
      const more = entry.moreFiles > 0 ? ` and ${entry.moreFiles} more` : "";
      return `${entry.files.join(", ")}${more} changed`;
    }
    case "reload":
      return "hotreload reload";
    case "SIGHUP":
      return "SIGHUP";
    case "SIGUSR2":
      return "SIGUSR2 (custom processes)";
    case "takeover":
      return "takeover";
    case "succession":
      return "succession";
    default:
      return entry.reason || "reload";
  }
}

function outcome(entry) {
  if (entry.outcome === "running") return "running…";
  if (entry.outcome === "aborted") return "aborted";
  return entry.allNewMs === null ? "done" : `done: all responses new after ${entry.allNewMs} ms`;
}

function renderTimeline(reloads) {
  $("no-reloads").hidden = reloads.length > 0;
  $("timeline").replaceChildren(...reloads.map((entry) => {
    const item = el("li", entry.outcome);
    item.dataset.generation = String(entry.generation);
    item.dataset.trigger = entry.trigger;
    const head = el("div");
    head.append(
      el("span", "time", clock(entry.startedAt)),
      " · ",
      el("span", "what", `generation ${entry.generation}`),
      " · ",
      el("span", "trigger", trigger(entry)),
      " · ",
      el("span", "outcome", outcome(entry)),
    );
    item.append(head);
    if (entry.message) item.append(el("div", "detail", entry.message));
    return item;
  }));
}

// ---- Output -------------------------------------------------------------------------------

let lastSeq = 0;

function renderOutput(output) {
  const box = $("lines");
  const scroller = $("output");
  const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
  // A smaller number than the last shown: the producer started over (a new supervisor).
  if (output.length > 0 && output.at(-1).seq < lastSeq) {
    box.replaceChildren();
    lastSeq = 0;
  }
  for (const line of output) {
    if (line.seq <= lastSeq) continue;
    const row = el("div", line.stream);
    row.append(
      el("span", "time", clock(line.at)),
      " ",
      el("span", "source", `[${line.source}]`),
      " ",
      el("span", "text", line.cut ? `${line.text} [cut]` : line.text),
    );
    box.append(row);
    lastSeq = line.seq;
  }
  while (box.childElementCount > Math.max(output.length, 1)) box.firstElementChild.remove();
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
}

// ---- Connection ---------------------------------------------------------------------------

let lastUpdate = 0;
let connected = false;

function say(state, text) {
  const status = $("connection");
  if (status.textContent !== text) status.textContent = text;
  status.className = `connection ${state}`;
}

function render(update) {
  renderInstance(update);
  renderRows(update.children);
  renderCharts(update);
  renderTimeline(update.reloads);
  renderOutput(update.output);
}

function connect() {
  const events = new EventSource("events");
  events.addEventListener("open", () => {
    connected = true;
  });
  events.addEventListener("message", (event) => {
    let update;
    try {
      update = JSON.parse(event.data);
    } catch {
      say("down", "an update could not be read");
      return;
    }
    if (update?.type !== UPDATE_TYPE || update.version !== UPDATE_VERSION) {
      say("down", "not an update this page can show (another hotreload version?)");
      return;
    }
    lastUpdate = performance.now();
    document.body.classList.remove("stale");
    render(update);
    say("live", "live");
  });
  events.addEventListener("error", () => {
    connected = false;
    say(
      "down",
      events.readyState === EventSource.CLOSED
        ? "disconnected: reload the page to try again"
        : "reconnecting…",
    );
  });
}

// Updates come once a second: silence for longer means the supervisor is gone or wedged.
setInterval(() => {
  if (!connected || lastUpdate === 0) return;
  const silent = performance.now() - lastUpdate;
  if (silent > STALE_MS) {
    document.body.classList.add("stale");
    say("down", `no update for ${Math.round(silent / 1000)} s`);
  }
}, 1000);

connect();
