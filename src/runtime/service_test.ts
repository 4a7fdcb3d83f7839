import assert from "node:assert/strict";
import { Shed, SHED_MS } from "./service.ts";

Deno.test("a shed asked twice lets one connection go, not two", () => {
  const shed = new Shed();
  shed.ask(0);
  shed.ask(100);
  assert.equal(shed.asked, true);
  assert.equal(shed.take(150), true);
  assert.equal(shed.asked, false);
  assert.equal(shed.take(160), false);
});

Deno.test("a shed no answer took within SHED_MS lapses", () => {
  const shed = new Shed();
  shed.ask(1000);
  assert.equal(shed.take(1000 + SHED_MS + 1), false);
  assert.equal(shed.asked, false);
  // Asked again (the counts were still uneven): the next answer goes.
  shed.ask(5000);
  assert.equal(shed.take(5000 + SHED_MS), true);
});

Deno.test("no shed asked: every answer keeps its connection", () => {
  const shed = new Shed();
  assert.equal(shed.asked, false);
  assert.equal(shed.take(0), false);
});
