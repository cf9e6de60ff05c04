import type { HandbookRow } from '../domain/history.js';

/** Rows for a job, pushed one at a time, with a pause point after each chunk (see forEachHandbookRow). */
export type RowSource = (
  onRow: (row: HandbookRow) => void,
  afterChunk?: () => Promise<void> | void,
) => Promise<number>;

/** Where a job writes its output table, one field at a time (the CSV writer; an array in tests). */
export interface RowSink {
  text(s: string): void;
  number(n: number): void;
  endRow(): void;
  /** Hands buffered rows to the destination; resolves when it has taken them. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
