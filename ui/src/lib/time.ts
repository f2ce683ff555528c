// Dates and times as the panel shows them: relative times ("il y a 5 min"), clock times
// ("10:42"), due dates ("dans 2 jours" / overdue) and date ranges. Pure functions of an
// instant, `now` and a locale; the time zone defaults to the machine's (tests pass one).

import type { Locale } from './ipc';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Clock style: "09:05" in French, "9:05 AM" in English. */
function clockOptions(locale: Locale): Intl.DateTimeFormatOptions {
  return { hour: locale === 'fr' ? '2-digit' : 'numeric', minute: '2-digit' };
}

function toDate(iso: string | Date): Date {
  return iso instanceof Date ? iso : new Date(iso);
}

/** The calendar date (y, m, d) of an instant in a time zone, as a UTC day number. */
function dayNumber(d: Date, timeZone?: string): number {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).formatToParts(d);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return Date.UTC(get('year'), get('month') - 1, get('day')) / DAY;
}

/** Calendar days from `from` to `to` (0 = same day, 1 = `to` is tomorrow, -1 = yesterday). */
export function calendarDayDiff(from: Date, to: Date, timeZone?: string): number {
  return Math.round(dayNumber(to, timeZone) - dayNumber(from, timeZone));
}

/** "à l'instant", "il y a 5 min", "il y a 3 heures", "hier", "il y a 3 jours", else a date. */
export function relativeTime(iso: string, now: Date, locale: Locale, timeZone?: string): string {
  const then = toDate(iso);
  const diff = then.getTime() - now.getTime();
  const abs = Math.abs(diff);
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style: 'long' });
  if (abs < 45_000) return rtf.format(0, 'second');
  if (abs < HOUR) return rtf.format(Math.round(diff / MINUTE) || Math.sign(diff), 'minute');
  if (abs < DAY) return rtf.format(Math.round(diff / HOUR), 'hour');
  const days = calendarDayDiff(now, then, timeZone);
  if (Math.abs(days) < 7) return rtf.format(days, 'day');
  return formatDate(then, now, locale, timeZone);
}

/** "12 nov." (with the year when it is not this year). */
export function formatDate(iso: string | Date, now: Date, locale: Locale, timeZone?: string): string {
  const d = toDate(iso);
  const sameYear =
    new Intl.DateTimeFormat('en', { timeZone, year: 'numeric' }).format(d) ===
    new Intl.DateTimeFormat('en', { timeZone, year: 'numeric' }).format(now);
  return new Intl.DateTimeFormat(locale, {
    timeZone,
    day: 'numeric',
    month: 'short',
    year: sameYear ? undefined : 'numeric',
  }).format(d);
}

/** "10:42" today; "12 nov., 10:42" another day. */
export function formatClock(iso: string, now: Date, locale: Locale, timeZone?: string): string {
  const d = toDate(iso);
  const time = new Intl.DateTimeFormat(locale, { timeZone, ...clockOptions(locale) }).format(d);
  if (calendarDayDiff(now, d, timeZone) === 0) return time;
  return `${formatDate(d, now, locale, timeZone)}, ${time}`;
}

/** "lun. 23 nov., 17:00" — a full moment, weekday first. */
export function formatDateTime(iso: string, locale: Locale, timeZone?: string): string {
  return new Intl.DateTimeFormat(locale, {
    timeZone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    ...clockOptions(locale),
  }).format(toDate(iso));
}

/** "jeu. 26 nov., 14:30 – 15:30" (end on the same day) or two full moments. */
export function formatRange(start: string, end: string | null, locale: Locale, timeZone?: string): string {
  const from = formatDateTime(start, locale, timeZone);
  if (!end) return from;
  const sameDay = calendarDayDiff(toDate(start), toDate(end), timeZone) === 0;
  const to = sameDay
    ? new Intl.DateTimeFormat(locale, { timeZone, ...clockOptions(locale) }).format(toDate(end))
    : formatDateTime(end, locale, timeZone);
  return `${from} – ${to}`;
}

export interface Due {
  /** "aujourd'hui", "demain", "dans 2 jours", or the overdue word. */
  text: string;
  overdue: boolean;
  /** Calendar days from now to the due date (negative when past). */
  days: number;
}

/** How far a due date is: overdue once the instant has passed, else days by calendar. */
export function dueIn(
  dueAt: string,
  now: Date,
  locale: Locale,
  overdueText: string,
  timeZone?: string,
): Due {
  const due = toDate(dueAt);
  const days = calendarDayDiff(now, due, timeZone);
  if (due.getTime() < now.getTime()) return { text: overdueText, overdue: true, days };
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  return { text: rtf.format(days, 'day'), overdue: false, days };
}
