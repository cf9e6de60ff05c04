import { MemoryAnswerStore } from '../../../src/adapters/memory/memory-answer-store.js';
import { answerStoreConformance } from '../../conformance/answer-store.suite.js';
import { fakeClock } from '../models/fakes.js';

answerStoreConformance('memory', {
  async create() {
    const clock = fakeClock();
    const store = new MemoryAnswerStore(clock);
    return {
      a: store,
      b: store,
      elapse: async (ms) => clock.advance(ms),
    };
  },
});
