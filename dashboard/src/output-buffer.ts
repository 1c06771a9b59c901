/**
 * The lines of one attempt's output as the viewer keeps them: bounded (a track may print
 * millions of lines; the tab must not grow with it), numbered, and searchable without
 * scanning everything again for every line that arrives.
 *
 * Rows are kept in parallel arrays rather than an object each: at 100,000 rows that is three
 * arrays instead of 100,000 objects for the garbage collector to trace.
 */

/** A row as the API sends it (OutputLine): `offset` null for the service's notices. */
export interface IncomingLine {
  line: string;
  offset?: number | null;
  stream: 'STDOUT' | 'STDERR';
}

export interface OutputLimits {
  /** At most this many rows are kept; the oldest go first. */
  maxLines: number;
  /** And at most this many characters of text (one very long line must not defeat maxLines). */
  maxChars: number;
}

export const DEFAULT_LIMITS: OutputLimits = { maxLines: 100_000, maxChars: 32_000_000 };

/** A search hit: the row's sequence number (stable across trimming) and where in the text. */
export interface Match {
  seq: number;
  start: number;
}

const STDERR = 1;
const NOTICE = 2;

export class OutputBuffer {
  private texts: string[] = [];
  private flags: number[] = [];
  /** The line number of each row (0 for a notice: the service wrote it, not the script). */
  private numbers: number[] = [];
  private chars = 0;
  /** Sequence number of texts[0]: rows keep theirs when older ones are dropped. */
  private first = 0;
  private lastNumber = 0;
  /** Rows dropped from the top to stay within the limits. */
  dropped = 0;
  private query = '';
  matches: Match[] = [];

  constructor(private readonly limits: OutputLimits = DEFAULT_LIMITS) {}

  get length(): number {
    return this.texts.length;
  }

  get firstSeq(): number {
    return this.first;
  }

  /** Lines numbered so far (notices not counted). */
  get lineCount(): number {
    return this.lastNumber;
  }

  text(row: number): string {
    return this.texts[row] ?? '';
  }

  number(row: number): number {
    return this.numbers[row] ?? 0;
  }

  isStderr(row: number): boolean {
    return ((this.flags[row] ?? 0) & STDERR) !== 0;
  }

  isNotice(row: number): boolean {
    return ((this.flags[row] ?? 0) & NOTICE) !== 0;
  }

  /** Appends rows; returns how many rows were dropped from the top to stay within the limits. */
  append(lines: readonly IncomingLine[]): number {
    const from = this.texts.length;
    for (const line of lines) {
      const notice = line.offset === null;
      this.texts.push(line.line);
      this.flags.push((line.stream === 'STDERR' ? STDERR : 0) | (notice ? NOTICE : 0));
      this.numbers.push(notice ? 0 : ++this.lastNumber);
      this.chars += line.line.length;
    }
    if (this.query) this.search(from);
    return this.trim();
  }

  /**
   * Drops the oldest rows once over a limit, an eighth more than needed: one splice per
   * many appends instead of one per line (a splice copies the whole array).
   */
  private trim(): number {
    const { maxLines, maxChars } = this.limits;
    if (this.texts.length <= maxLines && this.chars <= maxChars) return 0;
    let drop = Math.max(0, this.texts.length - maxLines + Math.floor(maxLines / 8));
    let chars = 0;
    for (let i = 0; i < drop; i++) chars += this.texts[i]!.length;
    while (this.chars - chars > maxChars - Math.floor(maxChars / 8) && drop < this.texts.length - 1) chars += this.texts[drop++]!.length;
    this.texts.splice(0, drop);
    this.flags.splice(0, drop);
    this.numbers.splice(0, drop);
    this.chars -= chars;
    this.first += drop;
    this.dropped += drop;
    if (this.matches.length > 0) this.matches = this.matches.slice(firstAtOrAfter(this.matches, this.first));
    return drop;
  }

  /** Sets the search (case-insensitive, plain text) and finds its matches; '' clears it. */
  setQuery(query: string) {
    this.query = query.toLowerCase();
    this.matches = [];
    if (this.query) this.search(0);
  }

  /** Where `query` occurs in a row's text (for highlighting the visible rows). */
  matchesIn(text: string): number[] {
    const found: number[] = [];
    if (!this.query) return found;
    const lower = text.toLowerCase();
    for (let at = lower.indexOf(this.query); at !== -1; at = lower.indexOf(this.query, at + this.query.length)) found.push(at);
    return found;
  }

  get queryLength(): number {
    return this.query.length;
  }

  private search(fromRow: number) {
    for (let row = fromRow; row < this.texts.length; row++) {
      for (const start of this.matchesIn(this.texts[row]!)) this.matches.push({ seq: this.first + row, start });
    }
  }
}

/** Index of the first match at or after sequence number `seq` (matches are in order). */
export function firstAtOrAfter(matches: readonly Match[], seq: number): number {
  let lo = 0;
  let hi = matches.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (matches[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The byte offset after a line: where the next one starts (its newline counts). */
export function offsetAfter(line: string, offset: number): number {
  return offset + utf8Length(line) + 1;
}

/** UTF-8 bytes of a string, without encoding it (TextEncoder would copy every line). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
