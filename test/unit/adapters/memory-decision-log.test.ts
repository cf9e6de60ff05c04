import { MemoryDecisionLog } from '../../../src/adapters/memory/memory-decision-log.js';
import { decisionLogConformance } from '../../conformance/decision-log.suite.js';

decisionLogConformance('memory', {
  async create(horizonMs) {
    let offset = 0;
    const clock = { now: () => Date.now() + offset, monotonic: () => Date.now() + offset };
    return {
      log: new MemoryDecisionLog(clock, horizonMs),
      elapse: async (ms) => {
        offset += ms;
      },
    };
  },
});
