import { readFileSync } from 'node:fs';
import { type FeatureSet, FeatureSetSchema } from '../../src/domain/features/definition.js';
import { type CompiledFeatureSet, compileFeatureSet } from '../../src/domain/features/engine.js';

/** The device and network feature set (issue 20). */
export const v3Definition: FeatureSet = FeatureSetSchema.parse(
  JSON.parse(readFileSync('features/transaction_v3.json', 'utf8')),
);

/**
 * v3 plus the link features it does not ship, so the stores and the engine are tried on every kind: a distinct
 * count behind a delay, novelty of a card on a device, the device's own gaps.
 */
export const linkCoverageDefinition: FeatureSet = FeatureSetSchema.parse({
  ...v3Definition,
  name: 'links',
  version: 1,
  features: [
    ...v3Definition.features,
    {
      name: 'DEVICE_ID_NB_CUSTOMERS_7DAY_DELAYED',
      kind: 'window',
      entity: 'device',
      aggregation: 'count_distinct',
      of: 'customer',
      window_days: 7,
      delay_days: 1,
    },
    {
      name: 'DEVICE_ID_NEW_CUSTOMER_7DAY_WINDOW',
      kind: 'window',
      entity: 'device',
      aggregation: 'new_with',
      of: 'customer',
      window_days: 7,
      delay_days: 0,
    },
    {
      name: 'DEVICE_ID_SECONDS_SINCE_FIRST_CUSTOMER_USE_7DAY_WINDOW',
      kind: 'window',
      entity: 'device',
      aggregation: 'seconds_since_first_with',
      of: 'customer',
      window_days: 7,
      delay_days: 0,
    },
    {
      name: 'DEVICE_ID_SECONDS_SINCE_PREV_TX',
      kind: 'window',
      entity: 'device',
      aggregation: 'seconds_since_previous',
      window_days: 7,
      delay_days: 0,
    },
    {
      name: 'NETWORK_NB_DEVICES_7DAY_WINDOW',
      kind: 'window',
      entity: 'network',
      aggregation: 'count_distinct',
      of: 'device',
      window_days: 7,
      delay_days: 0,
    },
  ],
});

export const v3: CompiledFeatureSet = compileFeatureSet(v3Definition);
export const linkCoverage: CompiledFeatureSet = compileFeatureSet(linkCoverageDefinition);
