/**
 * Step outputs (SPEC rule 18): the file a script writes to `$DAGPIPE_OUTPUT`, in the format
 * of GitHub Actions' `$GITHUB_OUTPUT`, and the limit on what is kept. Pure.
 *
 *   name=value            one line: the value is everything after the first `=`
 *   name<<DELIMITER       several lines: the value is every line up to the one that is
 *   line 1                exactly DELIMITER, without the line break before it
 *   line 2
 *   DELIMITER
 *
 * As in GitHub's runner: empty lines are skipped; a line is `name=value` when its first `=`
 * comes before its first `<<`, a heredoc otherwise; the same name twice keeps the last
 * value. Lines end at LF, and a CR right before the LF belongs to the line break (as on
 * GitHub's Windows runners), so a file written with CRLF reads the same as one with LF;
 * a heredoc value keeps the line breaks inside it as written. Names follow the rule for
 * input names (letters, digits and _, not a digit first, at most 48 characters), so that
 * any output can be read by an input of the same name.
 */
import { isParamName } from './names.ts';

/** The most bytes of outputs a track keeps: outputs are values for the next steps, not data. */
export const MAX_OUTPUT_BYTES = 64 * 1024;

/** The file's name in the attempt's working directory; `$DAGPIPE_OUTPUT` holds its full path. */
export const OUTPUT_FILE_NAME = '.dagpipe-output';

/** Output name -> value, in the order first written. */
export type Outputs = Record<string, string>;

/**
 * What the launcher read of a script's output file after it exited 0: its text, or how
 * many bytes it held when they were more than MAX_OUTPUT_BYTES (the rest was never read),
 * or why it could not be read.
 */
export type OutputFile = { text: string } | { tooLarge: number } | { problem: string };

export type OutputsResult = { ok: true; outputs: Outputs } | { ok: false; reason: string };

/** The reason a track fails with when its script wrote more than MAX_OUTPUT_BYTES of outputs. */
export function tooLargeReason(bytes: number): string {
  return `The script wrote ${bytes} bytes of outputs; at most ${MAX_OUTPUT_BYTES} are kept; write large data to a file and pass its path as an output instead.`;
}

function unreadable(why: string): OutputsResult {
  return { ok: false, reason: `The script exited 0, but its outputs ($DAGPIPE_OUTPUT) could not be read: ${why}` };
}

/** A name as shown in a reason: never the whole of a long line (it may hold a value). */
function shown(name: string): string {
  return JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}…` : name);
}

/** The outputs of a file as the launcher read it; see the module comment for the format. */
export function outputsOf(file: OutputFile): OutputsResult {
  if ('tooLarge' in file) return { ok: false, reason: tooLargeReason(file.tooLarge) };
  if ('problem' in file) return unreadable(file.problem);
  return parseOutputs(file.text);
}

/**
 * Parses the text of an output file. A malformed line, a bad name or a heredoc without its
 * closing delimiter is a failure whose reason names the line (by number: a line's text may
 * hold a secret value, so it is never repeated).
 */
export function parseOutputs(text: string): OutputsResult {
  // A name-keyed map without a prototype: an output named "constructor" is just a name.
  const outputs = new Map<string, string>();
  let index = 0;
  let lineNumber = 0;
  /** The next line without its line break, and where the break started; undefined at the end. */
  const readLine = (): { line: string; breakAt: number; broken: boolean } | undefined => {
    if (index >= text.length) return undefined;
    lineNumber++;
    const start = index;
    const lf = text.indexOf('\n', start);
    if (lf === -1) {
      index = text.length;
      return { line: text.slice(start), breakAt: text.length, broken: false };
    }
    index = lf + 1;
    const breakAt = lf > start && text[lf - 1] === '\r' ? lf - 1 : lf;
    return { line: text.slice(start, breakAt), breakAt, broken: true };
  };
  for (let read = readLine(); read !== undefined; read = readLine()) {
    const { line } = read;
    if (line === '') continue;
    const at = lineNumber;
    const equals = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    let name: string;
    let value: string;
    if (equals >= 0 && (heredoc < 0 || equals < heredoc)) {
      name = line.slice(0, equals);
      value = line.slice(equals + 1);
    } else if (heredoc >= 0) {
      name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (delimiter === '') {
        return unreadable(`line ${at} starts a multi-line value of ${shown(name)} without a delimiter: write ${name || 'name'}<<EOF, the value's lines, then EOF alone on a line.`);
      }
      const start = index;
      let end = index;
      let closed = false;
      for (let body = readLine(); body !== undefined; body = readLine()) {
        if (body.line === delimiter) {
          closed = true;
          break;
        }
        end = body.breakAt;
        if (!body.broken) break;
      }
      if (!closed) {
        return unreadable(`the multi-line value of ${shown(name)} that starts on line ${at} never ends: no line after it is exactly ${shown(delimiter)}.`);
      }
      value = end > start ? text.slice(start, end) : '';
    } else {
      return unreadable(`line ${at} is neither name=value nor name<<DELIMITER.`);
    }
    if (!isParamName(name)) {
      return unreadable(
        name === ''
          ? `line ${at} has no name before its ${equals >= 0 && (heredoc < 0 || equals < heredoc) ? '=' : '<<'}.`
          : `line ${at}: ${shown(name)} is not an output name: use letters, digits and _ (not a digit first), at most 48 characters.`,
      );
    }
    // PostgreSQL cannot store NUL in text, nor can an input or a variable hold it.
    if (value.includes('\u0000')) return unreadable(`the value of ${shown(name)} (line ${at}) holds a NUL character; write binary data to a file and pass its path.`);
    outputs.set(name, value);
  }
  return { ok: true, outputs: Object.fromEntries(outputs) };
}
