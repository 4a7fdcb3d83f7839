/**
 * `--env-file` (Deno's flag, passed to every child): which files it names,
 * and a strict check of their syntax. Deno itself skips a line it cannot
 * read and keeps an unterminated quote as part of the value, so a broken env
 * file would otherwise start workers with wrong settings; hotreload refuses
 * it instead, before a start or a reload, and the old workers keep serving.
 */

/** The files the Deno flags name with `--env-file` (`--env-file` alone means `.env`). */
export function envFiles(denoFlags: string[]): string[] {
  const files: string[] = [];
  for (const flag of denoFlags) {
    if (flag === "--env-file") files.push(".env");
    else if (flag.startsWith("--env-file=")) files.push(flag.slice("--env-file=".length));
  }
  return [...new Set(files)];
}

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/;

/** One line of an env file: the key it assigns, or what is wrong with it. */
type EnvLine = { key: string } | { error: string };

/**
 * The assignments of an env file's text, in order, each as its key, up to
 * and including the first syntax error (`line N: what`). Blank lines and
 * comments assign nothing; quoted values must close (a double-quoted value
 * may span lines, and its lines are not read as assignments).
 */
function* envLines(text: string): Generator<EnvLine> {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*(#.*)?$/.test(line)) continue;
    const assignment = line.match(ASSIGNMENT);
    if (!assignment) {
      // Not the line itself: the file may be a secret someone pointed us at.
      yield { error: `line ${i + 1}: not KEY=value` };
      return;
    }
    yield { key: assignment[1] };
    const value = assignment[2];
    const quote = value[0];
    if (quote !== '"' && quote !== "'" && quote !== "`") continue;
    // The closing quote: on this line, or (double quotes, backticks) on a later one.
    let rest = value.slice(1);
    let at = i;
    while (!closes(rest, quote)) {
      if (quote === "'" || at + 1 >= lines.length) {
        yield {
          error: `line ${i + 1}: the ${quote} quote opened for ${assignment[1]} is never closed`,
        };
        return;
      }
      rest = lines[++at];
    }
    i = at;
  }
}

/**
 * The first syntax error in an env file's text, as `line N: what`, or
 * undefined when every line is blank, a comment or `KEY=value` (quoted values
 * closed; a double-quoted value may span lines).
 */
export function envSyntaxError(text: string): string | undefined {
  for (const line of envLines(text)) if ("error" in line) return line.error;
  return undefined;
}

function closes(text: string, quote: string): boolean {
  for (let j = 0; j < text.length; j++) {
    if (text[j] === "\\") j++;
    else if (text[j] === quote) return /^\s*(#.*)?$/.test(text.slice(j + 1));
  }
  return false;
}

/** An env file larger than this is refused (it would be read on the supervisor's loop). */
export const MAX_ENV_FILE_BYTES = 1 << 20;

/**
 * Checks every env file; returns `file: line N: what` for the first broken
 * one, or undefined. A file is read only when it is a regular file of at most
 * MAX_ENV_FILE_BYTES (lstat first, so a link is refused, not followed, and a
 * FIFO is never opened: opening one waits for a writer); what it holds is
 * never repeated in a message, since whoever can write the project directory
 * chooses it.
 */
export function checkEnvFiles(files: string[], cwd: string): string | undefined {
  for (const file of files) {
    const read = readEnvFile(file, cwd);
    if ("error" in read) return read.error;
    const error = envSyntaxError(read.text);
    if (error) return `${file}: ${error}`;
  }
  return undefined;
}

/** Whether any of the env files (those that can be read) assigns `name`. */
export function envFilesAssign(files: string[], cwd: string, name: string): boolean {
  return files.some((file) => {
    const read = readEnvFile(file, cwd);
    if ("error" in read) return false;
    for (const line of envLines(read.text)) if ("key" in line && line.key === name) return true;
    return false;
  });
}

/** An env file's text, or why it is refused (see checkEnvFiles). */
function readEnvFile(file: string, cwd: string): { text: string } | { error: string } {
  const path = file.startsWith("/") ? file : `${cwd}/${file}`;
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch {
    return { error: `${file}: cannot be read (--env-file)` };
  }
  if (info.isSymlink) {
    return { error: `${file}: is a symbolic link; give --env-file the file itself` };
  }
  if (!info.isFile) return { error: `${file}: is not a regular file (--env-file)` };
  if (info.size > MAX_ENV_FILE_BYTES) {
    return {
      error: `${file}: is ${info.size} bytes; an env file may hold at most ${MAX_ENV_FILE_BYTES}`,
    };
  }
  try {
    return { text: Deno.readTextFileSync(path) };
  } catch {
    return { error: `${file}: cannot be read (--env-file)` };
  }
}
