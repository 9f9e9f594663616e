import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessGrantConfig } from '../config/access-config.js';
import { connectionMatches, matchStaticGrant, windowOpenUntil } from './grants.js';

const at = (iso: string) => Date.parse(iso);
const H = 3600;

describe('windowOpenUntil (UTC)', () => {
  // 2026-11-23 is a Monday.
  const weekdays = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, from: 8 * H, to: 18 * H };

  test('table: open, closed, edges, weekdays, overnight', () => {
    const cases: Array<[string, { days?: readonly string[]; from: number; to: number }, string, string | undefined]> = [
      ['inside a weekday window', weekdays, '2026-11-23T12:00:00Z', '2026-11-23T18:00:00Z'],
      ['from is inclusive', weekdays, '2026-11-23T08:00:00Z', '2026-11-23T18:00:00Z'],
      ['to is exclusive', weekdays, '2026-11-23T18:00:00Z', undefined],
      ['before it opens', weekdays, '2026-11-23T07:59:59Z', undefined],
      ['a Saturday', weekdays, '2026-11-28T12:00:00Z', undefined],
      ['overnight, evening part', { from: 22 * H, to: 6 * H }, '2026-11-23T23:00:00Z', '2026-11-24T06:00:00Z'],
      ['overnight, morning part', { from: 22 * H, to: 6 * H }, '2026-11-24T05:59:00Z', '2026-11-24T06:00:00Z'],
      ['overnight, in the gap', { from: 22 * H, to: 6 * H }, '2026-11-24T12:00:00Z', undefined],
      // The days name the day the window starts: Friday night runs into Saturday morning.
      [
        'overnight from Friday',
        { days: ['fri'], from: 22 * H, to: 6 * H },
        '2026-11-28T02:00:00Z',
        '2026-11-28T06:00:00Z',
      ],
      ['overnight not from Saturday', { days: ['fri'], from: 22 * H, to: 6 * H }, '2026-11-29T02:00:00Z', undefined],
      ['until 24:00', { from: 0, to: 24 * H }, '2026-11-23T23:59:59Z', '2026-11-24T00:00:00Z'],
    ];
    for (const [name, window, now, until] of cases) {
      const got = windowOpenUntil(window as never, at(now));
      assert.equal(
        got === undefined ? undefined : new Date(got).toISOString(),
        until && new Date(until).toISOString(),
        name,
      );
    }
  });
});

describe('matchStaticGrant', () => {
  const grants: AccessGrantConfig[] = [
    { id: 'dba', identities: [], groups: ['dba'], connections: ['prod-*'], actions: ['connect'], windows: [] },
    {
      id: 'bob',
      identities: ['user:bob'],
      groups: [],
      connections: ['staging-pg'],
      actions: ['connect', 'exec'],
      windows: [],
    },
    {
      id: 'bob-office',
      identities: ['user:bob'],
      groups: [],
      connections: ['prod-pg'],
      actions: ['connect'],
      windows: [{ from: 8 * H, to: 18 * H }],
    },
  ];
  const now = at('2026-11-23T12:00:00Z');

  test('identity, group, glob and action must all match', () => {
    assert.equal(
      matchStaticGrant(grants, { label: 'user:dora', groups: ['dba'] }, 'prod-pg', 'connect', now)?.grant.id,
      'dba',
    );
    assert.equal(matchStaticGrant(grants, { label: 'user:dora', groups: ['dba'] }, 'prod-pg', 'exec', now), undefined);
    assert.equal(
      matchStaticGrant(grants, { label: 'user:dora', groups: ['dba'] }, 'staging-pg', 'connect', now),
      undefined,
    );
    assert.equal(
      matchStaticGrant(grants, { label: 'service:bob', groups: [] }, 'staging-pg', 'connect', now),
      undefined,
    );
    assert.equal(
      matchStaticGrant(grants, { label: 'user:bob', groups: [] }, 'staging-pg', 'exec', now)?.grant.id,
      'bob',
    );
  });

  test('the longest-lasting grant wins; a window bounds validUntil', () => {
    const both = matchStaticGrant(grants, { label: 'user:bob', groups: ['dba'] }, 'prod-pg', 'connect', now);
    assert.equal(both?.grant.id, 'dba');
    assert.equal(both?.validUntil, Number.POSITIVE_INFINITY);
    const windowed = matchStaticGrant(grants, { label: 'user:bob', groups: [] }, 'prod-pg', 'connect', now);
    assert.equal(windowed?.grant.id, 'bob-office');
    assert.equal(windowed?.validUntil, at('2026-11-23T18:00:00Z'));
    assert.equal(
      matchStaticGrant(grants, { label: 'user:bob', groups: [] }, 'prod-pg', 'connect', at('2026-11-23T19:00:00Z')),
      undefined,
    );
  });

  test('connection patterns', () => {
    assert.equal(connectionMatches('*', 'anything'), true);
    assert.equal(connectionMatches('prod-*', 'prod-pg'), true);
    assert.equal(connectionMatches('prod-*', 'staging-pg'), false);
    assert.equal(connectionMatches('prod-pg', 'prod-pg2'), false);
  });
});
