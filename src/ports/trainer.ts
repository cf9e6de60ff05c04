/** The training package (Python: training/fraudscore_training) as `fraudscore retrain` uses it. */
export interface TrainRequest {
  /** The training set (backfill output) of `featureSet`. */
  readonly features: string;
  /** Where the version is written (a staging folder; manifest.json last). */
  readonly folder: string;
  readonly name: string;
  readonly version: string;
  /** Feature set id, e.g. transaction_v2. */
  readonly featureSet: string;
  readonly featureDir: string;
  /** Exclusive end of the rows the model learns from (members + validation), YYYY-MM-DD. */
  readonly trainUntil: string;
  readonly seed: number;
  /** Extra trainer flags passed as they are (--smoke, --max-trees N, --debug-shuffle-labels, …). */
  readonly options: readonly string[];
}

export interface GateRule {
  readonly text: string;
}

export interface GateRequest {
  readonly features: string;
  readonly candidate: string;
  /** The champion's version folder and, when its feature set differs, its training set. */
  readonly champion?: { readonly folder: string; readonly features: string };
  readonly testFrom: string;
  readonly testDays: number;
  readonly rules: readonly string[];
  readonly resamples: number;
  readonly seed: number;
  readonly confidence: number;
  /** A scratch folder for the exchange files. */
  readonly workDir: string;
  /** Provenance for the card: trigger, code, data, trainer options, step timings. */
  readonly context: Record<string, unknown>;
}

export interface GateResult {
  readonly verdict: 'eligible' | 'rejected';
  readonly reasons: readonly string[];
  readonly comparison: Record<
    string,
    { champion: number; candidate: number; delta: number; ci_lower: number; ci_upper: number }
  > | null;
  readonly evaluation: { from: string; to: string; rows: number; frauds: number };
}

export interface Trainer {
  /** Trains, exports and verifies a version into `r.folder`; `onLine` gets the trainer's progress lines. */
  train(r: TrainRequest, onLine: (line: string) => void): Promise<void>;
  /** Evaluates the candidate against the champion, writes the card (manifest + MODEL_CARD.md), returns the verdict. */
  gate(r: GateRequest, onLine: (line: string) => void): Promise<GateResult>;
}

/** The model repository's folders as a publisher sees them. */
export interface ModelFolders {
  /** One more than the highest numbered folder of `name` (complete or not), "1" when none. */
  nextVersion(name: string): Promise<string>;
  /** The folder of a published version. */
  folder(name: string, version: string): string;
  /** A new empty folder in the same parent as the version's (so publishing is one rename). */
  stage(name: string, version: string): Promise<string>;
  /** Renames the staged folder to the version's; fails when that exists. */
  publish(staged: string, name: string, version: string): Promise<string>;
  /** Removes a staged folder and everything in it. */
  discard(staged: string): Promise<void>;
}
