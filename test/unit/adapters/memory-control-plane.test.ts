import { MemoryControlPlane } from '../../../src/adapters/memory/memory-control-plane.js';
import { controlPlaneConformance } from '../../conformance/control-plane.suite.js';

controlPlaneConformance('memory', {
  async create(clock) {
    // One process: both "clients" are the same object.
    const plane = new MemoryControlPlane(clock);
    return { a: plane, b: plane };
  },
});
