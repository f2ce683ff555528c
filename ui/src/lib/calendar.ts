// The Preferences' "Calendar (ICS)" section as a pure reducer: "Create a link" /
// "New link" (rotate) shows the feed URL to copy, "Turn off" (revoke) ends it, errors
// are kept until the next try. The gateway has no "show the current link" call (the URL
// is a secret it only stores hashed), so the URL is shown only in the panel that made
// it: reopening Preferences offers a new link, which turns the previous one off.

import type { AppError } from './ipc';
import type { Key } from './i18n';

export interface CalendarUi {
  busy: 'rotate' | 'revoke' | null;
  /** The feed URL made in this panel, until turned off. */
  url: string | null;
  /** The last outcome, for the status line. */
  status: 'idle' | 'created' | 'off' | 'none';
  error: AppError | null;
  copied: 'idle' | 'copied' | 'failed';
}

export const CALENDAR_IDLE: CalendarUi = { busy: null, url: null, status: 'idle', error: null, copied: 'idle' };

export type CalendarEvent =
  | { type: 'start'; action: 'rotate' | 'revoke' }
  | { type: 'rotated'; url: string }
  | { type: 'revoked'; revoked: boolean }
  | { type: 'failed'; error: AppError }
  | { type: 'copied'; ok: boolean };

export function reduceCalendar(state: CalendarUi, event: CalendarEvent): CalendarUi {
  switch (event.type) {
    case 'start':
      return { ...state, busy: event.action, error: null, copied: 'idle' };
    case 'rotated':
      return { ...state, busy: null, url: event.url, status: 'created', error: null };
    case 'revoked':
      return { ...state, busy: null, url: null, status: event.revoked ? 'off' : 'none', error: null };
    case 'failed':
      return { ...state, busy: null, error: event.error };
    case 'copied':
      return { ...state, copied: event.ok ? 'copied' : 'failed' };
  }
}

/** The main button's words: "Create a link" first, "New link" once one is shown. */
export function rotateLabel(state: CalendarUi): Key {
  if (state.busy === 'rotate') return 'prefs.calendar.busy';
  return state.url ? 'prefs.calendar.rotate' : 'prefs.calendar.create';
}

/** The status line's key, if any (errors are worded apart). */
export function calendarStatus(state: CalendarUi): Key | null {
  if (state.copied === 'copied') return 'prefs.calendar.copied';
  if (state.copied === 'failed') return 'prefs.calendar.copy_failed';
  switch (state.status) {
    case 'created':
      return 'prefs.calendar.created';
    case 'off':
      return 'prefs.calendar.turned_off';
    case 'none':
      return 'prefs.calendar.none';
    default:
      return null;
  }
}
