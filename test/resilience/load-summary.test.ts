/**
 * The load driver's figures over a run as long as `npm run bench:resilience`'s soak: 20
 * connections at 10 requests a second for 30 minutes are 360,000 records. The first full run
 * stopped there with "Maximum call stack size exceeded" (the maximum latency was taken with
 * Math.max(...latencies)) and lost its 40 minutes of figures.
 */
import { LoadRecord, percentile, recoveryMs, summarize } from '../../dev/resilience/load';

const SOAK_RECORDS = 20 * 10 * 60 * 30;

function record(i: number, overrides: Partial<LoadRecord> = {}): LoadRecord {
  return {
    kind: 'request',
    connection: i % 20,
    port: 1,
    at: i * 5,
    latencyMs: (i % 100) + 1,
    status: 200,
    refreshed: false,
    retries: 0,
    phase: 'soak',
    ...overrides,
  };
}

test(`summarize takes ${SOAK_RECORDS.toLocaleString('en')} records (a 30-minute soak): counts, p99 and the maximum`, () => {
  const records = Array.from({ length: SOAK_RECORDS }, (_, i) => record(i));
  records[1234] = record(1234, { latencyMs: 9000, status: 0, error: 'socket hang up' });
  const summary = summarize(records);
  expect(summary).toMatchObject({ requests: SOAK_RECORDS, failures: 1, maxMs: 9000, p99Ms: 100, failureKinds: { '0 socket hang up': 1 } });
});

test('percentile and recovery on small sets', () => {
  expect(percentile([], 99)).toBe(0);
  expect(percentile([5, 1, 3], 50)).toBe(3);
  const records = [record(0), record(1, { status: 503 }), record(2), record(3)];
  // The fault ended at 0 ms; the last failure is at 5 ms, the next request starts at 10 ms.
  expect(recoveryMs(records, 0)).toBe(10);
  expect(recoveryMs([record(0), record(2)], 0)).toBe(0);
});
