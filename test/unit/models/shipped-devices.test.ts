/**
 * Issue 20: the shipped transaction_v3 version (models/fraudscore_devices/1, `bash training/device_model.sh`) loads
 * through the service's own pipeline — schema, checksums, ONNX names, its golden rows scored by onnxruntime, warm-up
 * — under MODEL_NAME=fraudscore_devices, and scores a transaction with device_id and ip and one without (the device
 * and network inputs then take their defaults and are named in `defaulted_features`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { captureLogger, type LogLine } from '../../helpers/logger.js';

const tx = (over: Record<string, unknown> = {}) => ({
  transaction_id: 'd-1',
  timestamp: '2018-06-20T10:00:00Z',
  customer_id: 'C1',
  terminal_id: 'T1',
  amount: 42.5,
  ...over,
});

describe('the shipped v3 model fraudscore_devices/1', () => {
  let s: Service;
  const logs: LogLine[] = [];
  beforeAll(async () => {
    s = await createService(
      loadConfig({
        MODEL_DIR: 'models',
        MODEL_NAME: 'fraudscore_devices',
        FEATURE_SETS: 'transaction_v3',
        LOG_LEVEL: 'info',
        REQUEST_DEADLINE_MS: '10000',
      }),
      { logger: captureLogger(logs, 'info') },
    );
  }, 60_000);
  afterAll(() => s.close());
  const post = (payload: object) => s.app.inject({ method: 'POST', url: '/v1/score?explain=true', payload });

  it('passes the load pipeline, golden rows included, and is ready', async () => {
    const active = s.registry.active('fraudscore_devices');
    expect(active?.manifest.version).toBe('1');
    expect(active?.manifest.feature_set).toEqual({ name: 'transaction', version: 3 });
    expect(active?.manifest.golden.length).toBeGreaterThan(0);
    const ready = await s.app.inject('/health/ready');
    expect(ready.statusCode).toBe(200);
  });

  it('scores with device_id and ip: no input defaulted', async () => {
    const r = await post(tx({ device_id: 'dev-1', ip: '198.51.100.7' }));
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.model).toEqual({ name: 'fraudscore_devices', version: '1', feature_set: 'transaction_v3' });
    expect(body.degraded).toBe(false);
    expect(body.score).toBeGreaterThanOrEqual(0);
    expect(body.score).toBeLessThanOrEqual(1);
    expect(body.defaulted_features).toBeUndefined();
    expect(body.features).toMatchObject({
      DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW: 1,
      CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW: 1,
      NETWORK_NB_CUSTOMERS_1DAY_WINDOW: 1,
    });
  });

  it('scores without them: the device and network inputs take their defaults and are named', async () => {
    const r = await post(tx({ transaction_id: 'd-2', customer_id: 'C2' }));
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.degraded).toBe(false);
    expect(body.model.feature_set).toBe('transaction_v3');
    expect(body.defaulted_features).toEqual(
      expect.arrayContaining([
        'CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW',
        'DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW',
        'NETWORK_NB_CUSTOMERS_1DAY_WINDOW',
      ]),
    );
    expect(body.defaulted_features).not.toContain('TX_AMOUNT');
    expect(body.features.DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW).toBe(0);
    expect(body.features.CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_30DAY_WINDOW).toBe(2_592_000);
  });
});
