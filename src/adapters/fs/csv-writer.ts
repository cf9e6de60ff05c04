import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * Appends CSV text into one reusable buffer and hands full buffers to the file. Building millions of rows as
 * concatenated strings keeps every piece alive until the flush, which makes each young-generation GC copy them;
 * a buffer keeps the garbage short-lived.
 */
export class CsvWriter {
  private readonly out: WriteStream;
  private buf = Buffer.allocUnsafe(1 << 21);
  private pos = 0;
  private first = true;

  constructor(path: string) {
    this.out = createWriteStream(path);
  }

  text(s: string): void {
    if (this.pos + s.length * 3 + 2 > this.buf.length) this.spill();
    const buf = this.buf;
    if (!this.first) buf[this.pos++] = 44;
    this.first = false;
    // Short ASCII fields (ids, numbers, dates) are copied by hand: cheaper than a native call each.
    const start = this.pos;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) {
        this.pos = start + buf.write(s, start, 'utf8');
        return;
      }
      buf[this.pos++] = c;
    }
  }

  number(n: number): void {
    // Counts and flags are most of a feature row: write small integers digit by digit, no string needed.
    if (Number.isInteger(n) && n >= 0 && n < 1e15) {
      if (this.pos + 18 > this.buf.length) this.spill();
      const buf = this.buf;
      if (!this.first) buf[this.pos++] = 44;
      this.first = false;
      let digits = 1;
      for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
      for (let i = digits - 1, x = n; i >= 0; i--, x = Math.floor(x / 10)) buf[this.pos + i] = 48 + (x % 10);
      this.pos += digits;
      return;
    }
    this.text(String(n));
  }

  endRow(): void {
    if (this.pos + 1 > this.buf.length) this.spill();
    this.buf[this.pos++] = 10;
    this.first = true;
  }

  /** Writes what is buffered; resolves when the file can take more. */
  async flush(): Promise<void> {
    if (this.pos === 0) return;
    const ok = this.out.write(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = 0;
    if (!ok) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    await this.flush();
    this.out.end();
    await once(this.out, 'finish');
  }

  /** A row bigger than the space left: hand the buffer over without waiting (flush() applies back-pressure). */
  private spill(): void {
    this.out.write(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = 0;
  }
}
