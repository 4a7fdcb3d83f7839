import assert from "node:assert/strict";
import { Service, Shed, SHED_MS } from "./service.ts";

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

Deno.test("an answer of a handler that reads no request asks its client to reconnect once the worker is held; its other own answers wait for the hand-off", () => {
  const service = new Service(() => {}, undefined, () => false);
  assert.equal(service.closeOwnAnswer(), false, "in service, nothing asked");
  service.held = true;
  assert.equal(service.closeOwnAnswer(), true, "held: old code answers this connection once more");
  assert.equal(
    service.closeThis(),
    false,
    "held, not handed off: an upgrade's or a TLS server's answer keeps its connection",
  );
  service.handedOff = true;
  assert.equal(service.closeThis(), true);
  service.held = false;
  service.handedOff = false;
  service.draining = true;
  assert.equal(service.closeOwnAnswer(), true, "draining");
  service.draining = false;
  service.shedOne();
  assert.equal(service.closeOwnAnswer(), true, "a shed asked: one answer lets its connection go");
  assert.equal(service.closeOwnAnswer(), false, "one, not two");
});
