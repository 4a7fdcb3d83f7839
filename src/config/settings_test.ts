/**
 * The settings table: one rule per setting. A flag and a config key of the
 * same setting take the same values and refuse the same ones, every default
 * passes its own check, help states the default the code uses, and the
 * resolved settings are named by the table, not by a list kept beside it.
 */
import assert from "node:assert/strict";
import {
  CLOSE_WINDOW_MS,
  CLOSE_WINDOW_WATCHING_MS,
  findSetting,
  helpText,
  RESOLVED_KEYS,
  type Setting,
  settingChecks,
  settingKey,
  SETTINGS,
} from "./settings.ts";
import { Validator } from "./validator.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_EVENTS_DEBOUNCE_MS, DEFAULT_EXTENSIONS } from "../watch/defaults.ts";

const validator = () => new Validator("hotreload.json", "/", "");

/** A value each setting that takes one accepts, as typed on the command line. */
const GOOD: Record<string, string> = {
  workers: "3",
  port: "8000",
  host: "127.0.0.1",
  grace: "100",
  "ready-timeout": "100",
  settle: "0",
  "ready-path": "/healthz",
  timeout: "0",
  spares: "auto",
  switch: "rolling",
  "close-window": "250",
  handover: "kernel",
  "orphan-grace": "10",
  "reload-batch": "2",
  name: "app",
  "max-requests": "1000",
  "max-requests-jitter": "5",
  "max-memory": "512",
  "memory-check-interval": "100",
  poll: "10",
  debounce: "0",
  "log-format": "json",
};

/** A value the flag refuses (and so does the file, for the same setting). */
const BAD: Record<string, string> = {
  workers: "0",
  port: "65536",
  host: "not a host",
  grace: "-1",
  "ready-timeout": "0",
  settle: "1.5",
  "ready-path": "healthz",
  timeout: "86400001",
  spares: "-1",
  switch: "sometimes",
  "close-window": "soon",
  handover: "magic",
  "orphan-grace": "x",
  "reload-batch": "0",
  name: "../etc",
  "max-requests": "0",
  "max-requests-jitter": "-1",
  "max-memory": "0",
  "memory-check-interval": "99",
  poll: "9",
  debounce: "1e3",
  metrics: "99999",
  "log-format": "xml",
};

/** The value a config file would hold for a flag's text: a number when it is one. */
const asFileValue = (raw: string): unknown => /^\d+$/.test(raw) ? Number(raw) : raw;

Deno.test("settings: a flag and its config key accept the same value, as the same thing", () => {
  for (const setting of SETTINGS.filter((s) => GOOD[s.flag] !== undefined)) {
    const raw = GOOD[setting.flag];
    const parsed = setting.parse!(raw);
    const checked = setting.check!(validator(), asFileValue(raw), settingKey(setting)!);
    assert.deepEqual(checked, parsed, `--${setting.flag} ${raw}`);
  }
});

Deno.test("settings: a flag and its config key refuse the same value, in one line naming it", () => {
  for (const setting of SETTINGS.filter((s) => BAD[s.flag] !== undefined)) {
    const raw = BAD[setting.flag];
    assert.throws(() => setting.parse!(raw), (error: Error) => {
      assert.ok(error instanceof UsageError, `--${setting.flag} ${raw}: ${error}`);
      assert.match(error.message, new RegExp(`^--${setting.flag} must be .*\\(got "`));
      assert.ok(!error.message.includes("\n"));
      return true;
    });
    const key = settingKey(setting)!;
    assert.throws(
      () => setting.check!(validator(), asFileValue(raw), key),
      (error: Error) => error instanceof UsageError && error.message.includes(`"${key}" must be`),
      `${key}: ${raw}`,
    );
  }
});

Deno.test("settings: every value setting is covered above, and every default passes its check", () => {
  for (const setting of SETTINGS) {
    // --ext and --deno take any text; --sticky's flag has no value.
    if (setting.value !== undefined && setting.parse && !["ext", "deno"].includes(setting.flag)) {
      assert.ok(BAD[setting.flag] !== undefined, `a refused value for --${setting.flag}`);
    }
    if (setting.default === undefined || !setting.check) continue;
    const key = settingKey(setting)!;
    assert.deepEqual(setting.check(validator(), setting.default, key), setting.default, key);
  }
});

Deno.test("settings: a flag that sets a config key has a check, a flag with a value a parser", () => {
  const checks = settingChecks();
  for (const setting of SETTINGS) {
    const key = settingKey(setting);
    if (key !== undefined) assert.equal(checks[key], setting.check);
    // The flags that only gather values (repeatable paths, --process) are read as given.
    if (setting.value !== undefined && !setting.multiple) {
      assert.ok(setting.parse, `--${setting.flag} parses its value`);
    }
  }
});

Deno.test("settings: the resolved settings are the table's own", () => {
  const marked = SETTINGS.filter((s: Setting) => s.resolved).map(settingKey);
  assert.deepEqual([...RESOLVED_KEYS].sort(), marked.sort());
  for (const key of RESOLVED_KEYS) {
    assert.ok(SETTINGS.some((s) => settingKey(s) === key), `${key} is a setting's key`);
  }
});

Deno.test("settings: help states the defaults the code uses", () => {
  const help = (flag: string) => helpText(findSetting(`--${flag}`)!);
  assert.match(help("grace"), /\(default 5000\)$/);
  assert.match(
    help("close-window"),
    new RegExp(`auto: ${CLOSE_WINDOW_WATCHING_MS} while watching, else ${CLOSE_WINDOW_MS}`),
  );
  assert.ok(help("ext").includes(`(default ${DEFAULT_EXTENSIONS.join(",")})`));
  assert.ok(help("debounce").includes(`default ${DEFAULT_EVENTS_DEBOUNCE_MS} with file events`));
  assert.equal(findSetting("-w")?.flag, "workers");
  assert.equal(findSetting("--port=80")?.flag, "port");
});
