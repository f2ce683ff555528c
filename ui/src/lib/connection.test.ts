import { describe, expect, it } from 'vitest';
import { connectionDetail, connectionLabel } from './connection';

const TZ = 'Europe/Paris';
const now = new Date('2026-11-26T12:00:00Z');

describe('connectionLabel', () => {
  it('connected: live with the firm', () => {
    const c = { state: 'connected', since: '2026-11-26T08:00:00Z', tenant: 'Cabinet Dupont' } as const;
    expect(connectionLabel(c, now, 'fr', TZ)).toBe('En direct — Cabinet Dupont');
    expect(connectionLabel(c, now, 'en', TZ)).toBe('Live — Cabinet Dupont');
  });
  it('connecting', () => {
    const c = { state: 'connecting', attempt: 2, next_retry: null } as const;
    expect(connectionLabel(c, now, 'fr', TZ)).toBe('Connexion…');
    expect(connectionLabel(c, now, 'en', TZ)).toBe('Connecting…');
  });
  it('offline: since a local clock time', () => {
    const c = { state: 'offline', since: '2026-11-26T09:42:00Z', reason: 'timeout' } as const;
    expect(connectionLabel(c, now, 'fr', TZ)).toBe('Déconnecté depuis 10:42');
    expect(connectionLabel(c, now, 'en', TZ)).toBe('Offline since 10:42 AM');
  });
  it('offline since another day names the day', () => {
    const c = { state: 'offline', since: '2026-11-25T17:00:00Z', reason: '' } as const;
    expect(connectionLabel(c, now, 'fr', TZ)).toBe('Déconnecté depuis 25 nov., 18:00');
  });
  it('signed out', () => {
    expect(connectionLabel({ state: 'signed_out', reason: '' }, now, 'fr', TZ)).toBe('Non connecté');
    expect(connectionLabel({ state: 'signed_out', reason: '' }, now, 'en', TZ)).toBe('Signed out');
  });
});

describe('connectionDetail', () => {
  it('gives the attempt and the next retry time when known', () => {
    expect(connectionDetail({ state: 'connecting', attempt: 3, next_retry: '2026-11-26T11:00:30Z' }, now, 'fr', TZ)).toBe(
      'Tentative 3, nouvel essai à 12:00',
    );
    expect(connectionDetail({ state: 'connecting', attempt: 1, next_retry: null }, now, 'en', TZ)).toBe('Attempt 1');
  });
  it('gives the reason when offline', () => {
    expect(connectionDetail({ state: 'offline', since: '2026-11-26T09:42:00Z', reason: 'DNS failure' }, now, 'en', TZ)).toBe(
      'DNS failure',
    );
  });
});
