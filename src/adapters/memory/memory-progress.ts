import type { Clock } from '../../ports/clock.js';
import type { WorkerProgress, WorkerProgressStore } from '../../ports/worker-progress.js';

/** Worker progress held in this process: for a worker and an API that share it (tests, one-process setups). */
export class MemoryProgressStore implements WorkerProgressStore {
  private readonly records = new Map<string, WorkerProgress>();

  constructor(
    private readonly clock: Clock,
    /** A record older than this (by its `at`) is gone. */
    private readonly ttlMs = 60_000,
  ) {}

  async record(progress: WorkerProgress): Promise<void> {
    this.records.set(progress.member, { ...progress });
  }

  async remove(member: string): Promise<void> {
    this.records.delete(member);
  }

  async readAll(): Promise<WorkerProgress[]> {
    const oldest = this.clock.now() - this.ttlMs;
    for (const [member, p] of this.records) if (p.at < oldest) this.records.delete(member);
    return [...this.records.values()];
  }
}
