/**
 * A track's output as stored: lines in arrival order up to a byte limit, then a visible
 * marker saying how much was dropped. Memory stays bounded whatever a script prints.
 */
export class OutputBuffer {
  private readonly parts: string[] = [];
  private bytes = 0;
  private droppedBytes = 0;
  private droppedLines = 0;

  constructor(private readonly limitBytes: number) {}

  append(line: string): void {
    const size = Buffer.byteLength(line) + 1;
    if (this.droppedLines === 0 && this.bytes + size <= this.limitBytes) {
      this.parts.push(line);
      this.bytes += size;
    } else {
      this.droppedBytes += size;
      this.droppedLines++;
    }
  }

  toString(): string {
    const text = this.parts.length > 0 ? `${this.parts.join('\n')}\n` : '';
    if (this.droppedLines === 0) return text;
    return `${text}[output truncated: ${this.droppedLines} more line(s), ${this.droppedBytes} bytes, were not stored; the limit is ${this.limitBytes} bytes (OUTPUT_LIMIT_BYTES)]\n`;
  }
}
