import { silentLogger } from './logger.js';
import { trainingPython } from './python.js';

/**
 * What every test retrain shares: the repository's feature sets and training package, the Python trainer with
 * small models (--smoke), a fixed seed, a test trigger, a quiet log, the node engine.
 */
export function testRetrain() {
  return {
    name: 'fraudscore',
    featureDir: 'features',
    trainingDir: 'training',
    engine: 'node',
    seed: 7,
    testDays: 7,
    gapDays: 0,
    trigger: { kind: 'test' },
    trainerOptions: ['--smoke'],
    python: trainingPython(),
    logger: silentLogger(),
  } as const;
}

/** A gate generated data passes unless the candidate is clearly worse: 200 resamples keep it short. */
export const LENIENT_GATE = {
  rules: ['average_precision>=-0.05', 'auc_roc>=-0.05'],
  resamples: 200,
  seed: 7,
  confidence: 0.95,
} as const;
