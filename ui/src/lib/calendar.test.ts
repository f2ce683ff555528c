import { describe, expect, it } from 'vitest';
import { CALENDAR_IDLE, calendarStatus, reduceCalendar, rotateLabel } from './calendar';

describe('the calendar (ICS) section', () => {
  it('"Create a link", then the URL and "New link"; turning off forgets it', () => {
    let s = CALENDAR_IDLE;
    expect(rotateLabel(s)).toBe('prefs.calendar.create');
    s = reduceCalendar(s, { type: 'start', action: 'rotate' });
    expect(s.busy).toBe('rotate');
    expect(rotateLabel(s)).toBe('prefs.calendar.busy');
    s = reduceCalendar(s, { type: 'rotated', url: 'https://gw/v1/calendar/a.ics' });
    expect(s).toMatchObject({ busy: null, url: 'https://gw/v1/calendar/a.ics', status: 'created' });
    expect(rotateLabel(s)).toBe('prefs.calendar.rotate');
    expect(calendarStatus(s)).toBe('prefs.calendar.created');
    s = reduceCalendar(s, { type: 'copied', ok: true });
    expect(calendarStatus(s)).toBe('prefs.calendar.copied');
    s = reduceCalendar(s, { type: 'start', action: 'revoke' });
    expect(s.copied).toBe('idle');
    s = reduceCalendar(s, { type: 'revoked', revoked: true });
    expect(s).toMatchObject({ url: null, status: 'off' });
    expect(calendarStatus(s)).toBe('prefs.calendar.turned_off');
    expect(calendarStatus(reduceCalendar(s, { type: 'revoked', revoked: false }))).toBe('prefs.calendar.none');
  });

  it('an error is kept (the link shown stays) until the next try', () => {
    let s = reduceCalendar(CALENDAR_IDLE, { type: 'rotated', url: 'https://gw/v1/calendar/a.ics' });
    s = reduceCalendar(s, { type: 'start', action: 'rotate' });
    s = reduceCalendar(s, { type: 'failed', error: { code: 'offline', message: 'not connected' } });
    expect(s).toMatchObject({ busy: null, url: 'https://gw/v1/calendar/a.ics', error: { code: 'offline' } });
    s = reduceCalendar(s, { type: 'start', action: 'revoke' });
    expect(s.error).toBeNull();
    expect(calendarStatus(reduceCalendar(s, { type: 'copied', ok: false }))).toBe('prefs.calendar.copy_failed');
  });
});
