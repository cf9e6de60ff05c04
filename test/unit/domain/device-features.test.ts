import { describe, expect, it } from 'vitest';
import { FeatureSetSchema } from '../../../src/domain/features/definition.js';
import {
  compileFeatureSet,
  entityUnion,
  labelEvents,
  transactionEvents,
} from '../../../src/domain/features/engine.js';
import { ipPrefix } from '../../../src/domain/features/keys.js';
import { txInputOf } from '../../../src/domain/ingest.js';
import { v3, v3Definition } from '../../helpers/device-sets.js';

describe('ip_prefix', () => {
  it('is the /24 of an IPv4 address and the /48 of an IPv6 one, however written', () => {
    expect(ipPrefix('203.0.113.77')).toBe('203.0.113.0/24');
    expect(ipPrefix('10.0.0.0')).toBe('10.0.0.0/24');
    expect(ipPrefix('2001:db8:aa::1')).toBe('2001:db8:aa::/48');
    expect(ipPrefix('2001:0DB8:00aa:ffff::2')).toBe('2001:db8:aa::/48');
    expect(ipPrefix('2001:db8::1')).toBe('2001:db8:0::/48');
    expect(ipPrefix('::1')).toBe('0:0:0::/48');
    expect(ipPrefix('::ffff:192.0.2.1')).toBe('0:0:0::/48');
    expect(ipPrefix('fe80::1%eth0')).toBe('fe80:0:0::/48');
    expect(ipPrefix('1:2:3:4:5:6:7:8')).toBe('1:2:3::/48');
    for (const bad of ['', '1.2.3', '256.1.1.1', '1::2::3', '1:2:3:4:5:6:7:8:9', 'device'])
      expect(ipPrefix(bad), bad).toBeUndefined();
  });
});

describe('feature definitions with links (issue 20)', () => {
  const base = {
    name: 'x',
    version: 1,
    entities: { customer: { key: 'customer_id' }, device: { key: 'device_id' } },
  };
  const win = { kind: 'window', window_days: 1, delay_days: 0 };
  it('needs `of` exactly for the link aggregations, naming another entity', () => {
    const parse = (f: object) =>
      FeatureSetSchema.safeParse({ ...base, features: [{ name: 'F', ...win, ...f }] });
    expect(parse({ entity: 'customer', aggregation: 'count_distinct', of: 'device' }).success).toBe(true);
    expect(parse({ entity: 'customer', aggregation: 'count_distinct' }).success).toBe(false);
    expect(parse({ entity: 'customer', aggregation: 'count', of: 'device' }).success).toBe(false);
    expect(parse({ entity: 'customer', aggregation: 'new_with', of: 'customer' }).success).toBe(false);
    expect(parse({ entity: 'customer', aggregation: 'new_with', of: 'nowhere' }).success).toBe(false);
    expect(parse({ entity: 'device', aggregation: 'fraud_rate' }).success).toBe(false);
    expect(parse({ entity: 'customer', aggregation: 'new_with', of: 'device', delay_days: 1 }).success).toBe(
      false,
    );
    expect(
      parse({ entity: 'device', aggregation: 'count_distinct', of: 'customer', delay_days: 1 }).success,
    ).toBe(true);
  });

  it('writes the entities a transaction has ids for, with the links their features read', () => {
    const x = txInputOf({
      transaction_id: 't1',
      timestamp: '2018-04-01T00:00:00Z',
      customer_id: 'C',
      terminal_id: 'T',
      amount: 1,
      device_id: 'D',
      ip: '192.0.2.9',
    });
    const entities = entityUnion([v3]);
    const events = transactionEvents(x, entities);
    expect(events.map((e) => [e.key.entity, e.key.id, e.kind === 'tx' ? e.links : undefined])).toEqual([
      ['customer', 'C', { device: 'D', network: '192.0.2.0/24' }],
      ['terminal', 'T', undefined],
      ['device', 'D', { customer: 'C' }],
      ['ip', '192.0.2.9', { customer: 'C' }],
      ['network', '192.0.2.0/24', { customer: 'C' }],
    ]);
    const bare = { ...x, device_id: undefined, ip: undefined, ip_prefix: undefined };
    expect(transactionEvents(bare, entities).map((e) => e.key.entity)).toEqual(['customer', 'terminal']);
    expect(
      labelEvents({ txId: 't1', t: x.t, fraud: true, customer_id: 'C', terminal_id: 'T' }, entities).map(
        (e) => e.key.entity,
      ),
    ).toEqual(['customer', 'terminal']);
  });

  it('gives the documented defaults without a device or an IP, and names the features that took them', () => {
    const x = {
      id: 'a',
      t: Date.parse('2018-04-01T00:00:00Z'),
      amount: 5,
      customer_id: 'C',
      terminal_id: 'T',
    };
    const v = v3.compute(x, []);
    const f = Object.fromEntries(v3.names.map((n, i) => [n, v[i]]));
    expect(f.CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(1);
    expect(f.CUSTOMER_ID_NB_DEVICES_30DAY_WINDOW).toBe(0);
    expect(f.CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW).toBe(0);
    expect(f.CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_30DAY_WINDOW).toBe(2_592_000);
    expect(f.DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW).toBe(0);
    expect(f.DEVICE_ID_NB_TX_1DAY_WINDOW).toBe(0);
    expect(f.DEVICE_ID_AVG_AMOUNT_1DAY_WINDOW).toBe(0);
    expect(f.NETWORK_NB_CUSTOMERS_1DAY_WINDOW).toBe(0);
    const defaulted = v3.defaulted(x);
    expect(defaulted).toContain('CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW');
    expect(defaulted).toContain('NETWORK_NB_TX_1DAY_WINDOW');
    expect(defaulted).not.toContain('CUSTOMER_ID_NB_DEVICES_30DAY_WINDOW');
    expect(defaulted).not.toContain('CUSTOMER_ID_NB_TX_1DAY_WINDOW');
    expect(v3.defaulted({ ...x, device_id: 'D', ip: '::1' })).toEqual([]);
    // With a device seen for the first time: a new device, one card on it.
    const w = v3.compute({ ...x, device_id: 'D' }, []);
    expect(w[v3.names.indexOf('CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW')]).toBe(1);
    expect(w[v3.names.indexOf('DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW')]).toBe(1);
    expect(compileFeatureSet(v3Definition).names).toEqual(v3.names);
  });
});
