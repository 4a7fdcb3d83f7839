/** `hotreload reload`: a rolling reload of a running instance, reporting how it went. */
import { askInstance, failOn, signalInstance } from "../../control/client.ts";
import { parseControlArgs } from "../control_args.ts";
import { HotreloadError, NotRunningError } from "../../errors.ts";
import { RELOAD_HELP } from "../help.ts";

export async function reloadCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("reload", RELOAD_HELP, argv);
  if (!args) return 0;
  const { values } = args;
  // Neither flag: both; one flag: only that part.
  const both = !values.workers && !values.processes;
  const workers = both || values.workers === true;
  const processes = both || values.processes === true;
  const { instance, reply, silence } = await askInstance(values, {
    cmd: "reload",
    workers,
    processes,
  });
  if (reply) {
    failOn(reply);
    console.error(`hotreload: ${reply.message}`);
    return 0;
  }
  // It may still act on the request it did not answer: a signal now could reload twice.
  if (silence?.timedOut) throw new HotreloadError(`${silence.why}; check its log`);
  // No control socket answered: a signal does the same, without a report.
  // SIGHUP reloads everything and SIGUSR2 the processes; nothing reloads only the workers.
  if (!processes) {
    throw new HotreloadError(
      `"${instance.name}" does not answer on its control socket, which "reload --workers" needs; ` +
        `"hotreload reload" signals it instead`,
    );
  }
  const signal = workers ? "SIGHUP" : "SIGUSR2";
  if (!signalInstance(instance, signal)) {
    throw new NotRunningError(
      `"${instance.name}" (pid ${instance.pid}) stopped before it answered; nothing was reloaded`,
    );
  }
  console.error(
    `hotreload: sent ${signal} to "${instance.name}" (pid ${instance.pid}); its log reports the result`,
  );
  return 0;
}
