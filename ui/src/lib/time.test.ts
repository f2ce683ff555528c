import { describe, expect, it } from 'vitest';
import { calendarDayDiff, dueIn, formatClock, formatDateTime, formatRange, relativeTime } from './time';

const TZ = 'Europe/Paris';
// Thursday 26 November 2026, 10:00 in Paris (UTC+1).
const now = new Date('2026-11-26T09:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
const MIN = 60_000;
const HOUR = 60 * MIN;

describe('calendarDayDiff', () => {
  it('counts calendar days in the time zone, not 24 h spans', () => {
    // 23:30 Paris on the 26th → 00:30 Paris on the 27th: one hour apart, one day later.
    expect(calendarDayDiff(new Date('2026-11-26T22:30:00Z'), new Date('2026-11-26T23:30:00Z'), TZ)).toBe(1);
    // The same pair in UTC falls on one day.
    expect(calendarDayDiff(new Date('2026-11-26T22:30:00Z'), new Date('2026-11-26T23:30:00Z'), 'UTC')).toBe(0);
    expect(calendarDayDiff(now, new Date('2026-11-23T12:00:00Z'), TZ)).toBe(-3);
  });
});

describe('relativeTime', () => {
  it('says "now" for under 45 seconds', () => {
    expect(relativeTime(ago(20_000), now, 'fr', TZ)).toBe('maintenant');
    expect(relativeTime(ago(20_000), now, 'en', TZ)).toBe('now');
  });
  it('uses minutes, then hours', () => {
    expect(relativeTime(ago(5 * MIN), now, 'fr', TZ)).toBe('il y a 5 minutes');
    expect(relativeTime(ago(5 * MIN), now, 'en', TZ)).toBe('5 minutes ago');
    expect(relativeTime(ago(3 * HOUR), now, 'fr', TZ)).toBe('il y a 3 heures');
  });
  it('uses calendar days beyond a day, with words for yesterday', () => {
    expect(relativeTime(ago(25 * HOUR), now, 'fr', TZ)).toBe('hier');
    expect(relativeTime(ago(25 * HOUR), now, 'en', TZ)).toBe('yesterday');
    expect(relativeTime(ago(4 * 24 * HOUR), now, 'en', TZ)).toBe('4 days ago');
  });
  it('falls back to a date after a week (with the year only when it differs)', () => {
    expect(relativeTime('2026-11-12T10:00:00Z', now, 'fr', TZ)).toBe('12 nov.');
    expect(relativeTime('2025-11-12T10:00:00Z', now, 'en', TZ)).toBe('Nov 12, 2025');
  });
});

describe('formatClock', () => {
  it('is just the time today, date and time another day', () => {
    expect(formatClock('2026-11-26T09:42:00Z', now, 'fr', TZ)).toBe('10:42');
    expect(formatClock('2026-11-26T09:42:00Z', now, 'en', TZ)).toBe('10:42 AM');
    expect(formatClock('2026-11-25T20:05:00Z', now, 'fr', TZ)).toBe('25 nov., 21:05');
  });
});

describe('formatDateTime / formatRange', () => {
  it('shows weekday, date and time', () => {
    expect(formatDateTime('2026-11-26T13:30:00Z', 'fr', TZ)).toBe('jeu. 26 nov., 14:30');
    expect(formatDateTime('2026-11-26T13:30:00Z', 'en', TZ)).toBe('Thu, Nov 26, 2:30 PM');
  });
  it('shortens the end when it falls on the same day', () => {
    expect(formatRange('2026-11-26T13:30:00Z', '2026-11-26T14:30:00Z', 'fr', TZ)).toBe('jeu. 26 nov., 14:30 – 15:30');
    expect(formatRange('2026-11-26T13:30:00Z', null, 'fr', TZ)).toBe('jeu. 26 nov., 14:30');
    expect(formatRange('2026-11-26T13:30:00Z', '2026-11-27T08:00:00Z', 'fr', TZ)).toBe(
      'jeu. 26 nov., 14:30 – ven. 27 nov., 09:00',
    );
  });
});

describe('dueIn', () => {
  it('says tomorrow / in 2 days by calendar day', () => {
    expect(dueIn('2026-11-27T11:00:00Z', now, 'fr', 'En retard', TZ)).toEqual({ text: 'demain', overdue: false, days: 1 });
    expect(dueIn('2026-11-28T16:00:00Z', now, 'en', 'Overdue', TZ)).toEqual({ text: 'in 2 days', overdue: false, days: 2 });
  });
  it('says today for later the same day', () => {
    expect(dueIn('2026-11-26T16:00:00Z', now, 'fr', 'En retard', TZ).text).toBe('aujourd’hui');
  });
  it('is overdue as soon as the instant has passed, even the same day', () => {
    expect(dueIn('2026-11-26T08:00:00Z', now, 'en', 'Overdue', TZ)).toEqual({ text: 'Overdue', overdue: true, days: 0 });
    expect(dueIn('2026-11-20T08:00:00Z', now, 'fr', 'En retard', TZ)).toMatchObject({ overdue: true, days: -6 });
  });
});
