/**
 * Port policing: a port first seen is checked for another app's listener
 * (not --port, checked at start), once; a bind error before anything served
 * ends the run; leaving workers' listeners are released, held ones only when
 * not steered.
 */
import assert from "node:assert/strict";
import { type ChildSpec, ManagedChild } from "../child/child.ts";
import { FakeOs } from "../child/fake_os.ts";
import type { Handover } from "../handover/mod.ts";
import { Ports, portsOf } from "./ports.ts";

const os = new FakeOs();
const spec: ChildSpec = {
  role: "worker",
  id: 0,
  generation: 1,
  label: "worker 0",
  command: "deno",
  args: [],
  env: {},
  cwd: "/",
  settings: {},
};
const worker = () => ManagedChild.spawn(spec, { message() {}, exit() {} }, () => 0, os);

function ports(mode: Handover["mode"] = "ebpf", foreign?: number) {
  const asked: number[] = [];
  const released: string[] = [];
  let steered = 0;
  const workers = [worker()];
  const handover = {
    mode,
    listening() {},
    release: (pid: number, list: number[]) => void released.push(`${pid}:${list}`),
  } as unknown as Handover;
  const policing = new Ports({
    port: 8000,
    world: {
      foreignListener: (port, isOurs) => {
        asked.push(port);
        if (foreign === undefined || isOurs(foreign, foreign)) return undefined;
        return { pid: foreign, command: "python -m http.server" };
      },
      formerWorkers: () => [4242],
    },
    handover: () => handover,
    workers: () => workers,
    steer: () => steered++,
  });
  return { policing, asked, released, workers, steered: () => steered };
}

Deno.test("ports: a new port is checked once for another app; --port is not (checked at start)", () => {
  const { policing, asked, workers } = ports("ebpf", 999);
  const [child] = workers;
  assert.equal(policing.onListening(child, 8000, true), undefined);
  assert.deepEqual(asked, []);
  const why = policing.onListening(child, 9000, true);
  assert.match(why!, /^port 9000 is already served by another process \(pid 999: python/);
  assert.equal(policing.onListening(child, 9000, true), undefined, "said once");
  assert.deepEqual(asked, [9000]);
  assert.deepEqual(policing.bound(), [8000, 9000]);
  assert.deepEqual(portsOf(child), [8000, 9000]);
});

Deno.test("ports: our own workers, and the ones we replace, are not another app", () => {
  const { policing, workers } = ports("ebpf", 4242);
  assert.equal(policing.onListening(workers[0], 9000, true), undefined);
});

Deno.test("ports: a bind error ends the run before anything served, once; after, it is explained", () => {
  const { policing, workers } = ports();
  const explained: string[] = [];
  const pool = { everReady: false, explainExit: (_: unknown, why: string) => explained.push(why) };
  assert.equal(policing.onBindError(workers[0], 8000, "in use", pool, false), true);
  assert.equal(policing.onBindError(workers[0], 8000, "in use", pool, true), false, "stopping");
  pool.everReady = true;
  assert.equal(policing.onBindError(workers[0], 8000, "in use", pool, false), false);
  assert.deepEqual(explained, ["could not listen on port 8000 (address in use)"]);
});

Deno.test("ports: leaving workers' listeners are released once; held ones keep theirs when steered", () => {
  for (const mode of ["ebpf", "none"] as const) {
    const { policing, released, workers } = ports(mode);
    const [child] = workers;
    policing.onListening(child, 8000, true);
    policing.release([child], true);
    assert.deepEqual(released, mode === "ebpf" ? [] : [`${child.pid}:8000`], mode);
    policing.release([child]);
    policing.release([child]);
    assert.deepEqual(released, [`${child.pid}:8000`], `${mode}: once`);
  }
  const { policing, released, workers } = ports();
  policing.onListening(workers[0], 8000, false);
  policing.release(workers);
  assert.deepEqual(released, [], "a port a node server listens on is not released from outside");
});

Deno.test("ports: a serving worker that opens another port is steered there too", () => {
  const { policing, workers, steered } = ports();
  const [child] = workers;
  policing.onListening(child, 8000, true);
  assert.equal(steered(), 0, "a starting worker is not steered yet");
  child.markReady();
  policing.onListening(child, 8001, true);
  assert.equal(steered(), 1);
});
