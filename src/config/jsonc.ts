/**
 * A small JSONC reader: `//` and `/* *\/` comments and trailing commas, as in
 * deno.json(c). Kept apart (and named like @std/jsonc's `parse`) so that
 * @std/jsonc can replace it once JSR is reachable.
 *
 * `stripJsonc` turns JSONC into JSON without moving anything: every comment
 * character and every trailing comma becomes a space (newlines are kept), so
 * an offset in the result is the same offset in the original text.
 */

/**
 * Turns JSONC text into JSON text of the same length. Comment markers inside
 * strings are left alone; a comma is dropped only when a value precedes it and
 * `]` or `}` follows (so `[,]` stays invalid). Throws a SyntaxError for an
 * unterminated block comment.
 */
export function stripJsonc(text: string): string {
  const out = text.split("");
  if (out[0] === "\uFEFF") out[0] = " ";
  let last = -1; // index of the last significant character outside comments
  let comma = -1; // index of the last comma that follows a value
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      last = Math.min(i, text.length - 1);
      i++;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n" && text[i] !== "\r") out[i++] = " ";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end === -1) throw new SyntaxError(`Unterminated block comment at ${lineColumn(text, i)}`);
      for (; i < end + 2; i++) if (text[i] !== "\n" && text[i] !== "\r") out[i] = " ";
    } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
    } else {
      if (c === ",") comma = last >= 0 && !"[{,:".includes(text[last]) ? i : -1;
      else if ((c === "]" || c === "}") && comma !== -1 && comma === last) out[comma] = " ";
      last = i++;
    }
  }
  return out.join("");
}

/** Parses JSONC text. Throws a one-line SyntaxError with the line and column when known. */
export function parse(text: string): unknown {
  const json = stripJsonc(text);
  try {
    return JSON.parse(json);
  } catch (error) {
    const message = (error as Error).message;
    // V8: "... in JSON at position 14 (line 2 column 6)", "... after JSON at position 7 (...)"
    const at = /^(.*?)(?: in JSON)? at position (\d+)/.exec(message);
    if (at) throw new SyntaxError(`${at[1]} at ${lineColumn(text, Number(at[2]))}`);
    // V8: "Unexpected token 'x', "<source excerpt>" is not valid JSON" (no position)
    const token = /^Unexpected token '(.+?)', /s.exec(message);
    if (token) {
      const where = locate(json);
      throw new SyntaxError(
        `Unexpected token '${JSON.stringify(token[1]).slice(1, -1)}'` +
          (where === undefined ? "" : ` at ${lineColumn(text, where)}`),
      );
    }
    throw new SyntaxError(message.replace(/\s+/g, " "));
  }
}

/** `line L column C` (1-based) of a UTF-16 offset in `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split(/\r\n|\r|\n/).length;
  const column = offset - Math.max(before.lastIndexOf("\n"), before.lastIndexOf("\r"));
  return `line ${line} column ${column}`;
}

/**
 * The offset of the first character that makes `json` invalid, for V8 errors
 * that carry none: the longest prefix that is still "valid so far" (it parses,
 * or fails only by running out of input) ends right before the culprit.
 */
function locate(json: string): number | undefined {
  const viable = (n: number) => {
    try {
      JSON.parse(json.slice(0, n));
      return true;
    } catch (error) {
      const message = (error as Error).message;
      if (message === "Unexpected end of JSON input") return true;
      const at = / at position (\d+)/.exec(message);
      return at !== null && Number(at[1]) >= n;
    }
  };
  let lo = 0; // viable
  let hi = json.length; // not viable
  if (viable(hi)) return undefined;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (viable(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
