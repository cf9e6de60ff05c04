/** The PromQL evaluator the deploy and outage tests check alert expressions with: Prometheus' semantics. */
import { describe, expect, it } from 'vitest';
import { evaluate, parseExposition, type Sample } from './promql.js';

const S = (name: string, labels: Record<string, string>, value: number): Sample => ({ name, labels, value });
const samples = [
  S('lag', { topic: 'tx', partition: '0', pod: 'a' }, 5),
  S('lag', { topic: 'tx', partition: '1', pod: 'a' }, 0),
  S('lag', { topic: 'labels', partition: '0', pod: 'b' }, 2),
  S('applied', { topic: 'tx', partition: '0', pod: 'a' }, 1000),
  S('applied', { topic: 'tx', partition: '1', pod: 'a' }, 1290),
  S('applied', { topic: 'labels', partition: '0', pod: 'b' }, 1250),
  S('applied', { topic: 'labels', partition: '0', pod: 'c' }, 1100),
];
const series = (expr: string, time = 1300) => {
  const v = evaluate(expr, samples, { time });
  if (v.type !== 'vector') throw new Error('scalar');
  return v.series.map((s): Record<string, string | number> => ({ ...s.labels, value: s.value }));
};

describe('evaluate', () => {
  it('selects by name and label matchers', () => {
    expect(series('lag{topic="tx", partition!="1"}')).toEqual([
      { __name__: 'lag', topic: 'tx', partition: '0', pod: 'a', value: 5 },
    ]);
    expect(series('lag{topic=~"lab.*"}').map((s) => s.pod)).toEqual(['b']);
    expect(series('lag{topic!~"t."}').map((s) => s.pod)).toEqual(['b']);
    expect(series('nothing')).toEqual([]);
  });

  it('does arithmetic with scalars and time(), and comparisons filter unless bool', () => {
    expect(evaluate('time() - 100', [], { time: 1300 })).toEqual({ type: 'scalar', value: 1200 });
    expect(series('time() - max by (topic, partition) (applied) > 100')).toEqual([
      { topic: 'tx', partition: '0', value: 300 },
    ]);
    expect(series('lag > 1').map((s) => s.value)).toEqual([5, 2]);
    expect(series('lag > bool 1').map((s) => s.value)).toEqual([1, 0, 1]);
    expect(series('-lag{partition="1"}')).toEqual([{ topic: 'tx', partition: '1', pod: 'a', value: -0 }]);
  });

  it('aggregates by and without', () => {
    expect(series('sum by (topic) (lag)')).toEqual([
      { topic: 'tx', value: 5 },
      { topic: 'labels', value: 2 },
    ]);
    expect(series('max without (pod) (applied{topic="labels"})')).toEqual([
      { topic: 'labels', partition: '0', value: 1250 },
    ]);
    expect(series('count(lag)')).toEqual([{ value: 3 }]);
  });

  it('matches vectors one to one, on or ignoring labels; and, or, unless', () => {
    const stalled =
      '(time() - max by (topic, partition) (applied) > 40) and on (topic, partition) (max by (topic, partition) (lag) > 0)';
    expect(series(stalled)).toEqual([
      { topic: 'tx', partition: '0', value: 300 },
      { topic: 'labels', partition: '0', value: 50 },
    ]);
    expect(series(stalled, 1280)).toEqual([{ topic: 'tx', partition: '0', value: 280 }]);
    expect(series('lag unless on (topic) applied{topic="tx"}').map((s) => s.topic)).toEqual(['labels']);
    expect(series('lag{topic="tx"} or on (topic) lag').length).toBe(3);
    expect(series('lag{pod="a"} - on (topic, partition) applied{pod="a"}')).toEqual([
      { topic: 'tx', partition: '0', value: -995 },
      { topic: 'tx', partition: '1', value: -1290 },
    ]);
    expect(series('lag{pod="a"} + ignoring (pod) applied{pod="a"}').map((s) => s.value)).toEqual([
      1005, 1290,
    ]);
    expect(() => series('lag + on (topic) applied')).toThrow(/many-to-one/);
  });

  it('knows absent() and vector(), and refuses what needs more than one scrape', () => {
    expect(series('absent(nothing)')).toEqual([{ value: 1 }]);
    expect(series('absent(lag)')).toEqual([]);
    expect(series('vector(3)')).toEqual([{ value: 3 }]);
    expect(() => evaluate('rate(lag[5m])', samples, { time: 0 })).toThrow(/does not support/);
    expect(() => evaluate('lag +', samples, { time: 0 })).toThrow(/syntax/);
  });
});

describe('parseExposition', () => {
  it('reads samples with escaped label values, and adds the target labels', () => {
    const text = [
      '# HELP x something',
      '# TYPE x gauge',
      'x{a="q\\"uote",b="back\\\\slash"} 1.5',
      'y 2',
      '',
    ].join('\n');
    expect(parseExposition(text, { pod: 'p' })).toEqual([
      { name: 'x', labels: { pod: 'p', a: 'q"uote', b: 'back\\slash' }, value: 1.5 },
      { name: 'y', labels: { pod: 'p' }, value: 2 },
    ]);
  });
});
