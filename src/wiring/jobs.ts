import { CsvWriter } from '../adapters/fs/csv-writer.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import type { CompiledFeatureSet } from '../domain/features/engine.js';
import { DAY_MS } from '../domain/features/time.js';
import type { RowSource } from '../ports/row-source.js';
import { backfill } from '../usecases/backfill.js';

/**
 * `fraudscore backfill`: the history through the engine with the in-memory store, into a CSV file.
 * `graceMs` (default one day) is the retention beyond the set's lookback, for events that arrive late.
 */
export function backfillToCsv(
  source: RowSource,
  o: {
    readonly set: CompiledFeatureSet;
    readonly output: string;
    readonly graceMs?: number;
    readonly onProgress?: (done: number) => void;
  },
): Promise<{ rows: number }> {
  return backfill(source, {
    set: o.set,
    store: new MemoryFeatureStore({ horizonMs: o.set.lookbackMs + (o.graceMs ?? DAY_MS) }),
    sink: new CsvWriter(o.output),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
}
