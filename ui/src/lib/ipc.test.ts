import { describe, expect, it } from 'vitest';
import { commands, on, setTransport, toAppError, type Transport } from './ipc';

/** A transport that records calls and answers from a table. */
function recorder(answers: Record<string, unknown> = {}) {
  const calls: [string, Record<string, unknown> | undefined][] = [];
  const handlers = new Map<string, (p: unknown) => void>();
  const t: Transport = {
    async invoke(cmd, args) {
      calls.push([cmd, args]);
      const a = answers[cmd];
      if (a instanceof Error || (a && typeof a === 'object' && 'reject' in a)) throw (a as { reject: unknown }).reject ?? a;
      return a ?? null;
    },
    async listen(event, handler) {
      handlers.set(event, handler);
      return () => handlers.delete(event);
    },
  };
  setTransport(t);
  return { calls, handlers };
}

describe('commands', () => {
  it('deadlines and the calendar feed use the contract names', async () => {
    const { calls } = recorder();
    await commands.listDeadlines(200);
    await commands.acknowledge(['appel-2026-0142']);
    await commands.rotateCalendarFeed();
    await commands.revokeCalendarFeed();
    expect(calls).toEqual([
      ['list_deadlines', { limit: 200 }],
      ['acknowledge', { deadlineIds: ['appel-2026-0142'] }],
      ['rotate_calendar_feed', undefined],
      ['revoke_calendar_feed', undefined],
    ]);
  });

  it('send the contract names and argument shapes', async () => {
    const { calls } = recorder();
    await commands.snapshot();
    await commands.takeNavigation();
    await commands.listItems('deadlines', 50);
    await commands.listItems('emails', 50, 'n-9');
    await commands.markRead(['a', 'b']);
    await commands.markAllRead(null);
    await commands.respondProposal('prop-1', 'reject');
    await commands.signIn('https://gw', 'a@b.fr', 'pw');
    await commands.signIn('https://gw', 'a@b.fr', 'pw', 'AB:CD');
    await commands.signOut();
    await commands.getPreferences();
    const prefs = {
      enabled_kinds: {},
      quiet_hours: null,
      critical_breaks_through_quiet_hours: true,
      autostart: false,
      language: 'system' as const,
    };
    await commands.setPreferences(prefs);
    await commands.pause('tomorrow');
    await commands.hidePanel();
    expect(calls).toEqual([
      ['snapshot', undefined],
      ['take_navigation', undefined],
      ['list_items', { tab: 'deadlines', limit: 50, before: null }],
      ['list_items', { tab: 'emails', limit: 50, before: 'n-9' }],
      ['mark_read', { ids: ['a', 'b'] }],
      ['mark_all_read', { tab: null }],
      ['respond_proposal', { proposalId: 'prop-1', response: 'reject' }],
      ['sign_in', { server: 'https://gw', email: 'a@b.fr', password: 'pw' }],
      ['sign_in', { server: 'https://gw', email: 'a@b.fr', password: 'pw', fingerprint: 'AB:CD' }],
      ['sign_out', undefined],
      ['get_preferences', undefined],
      ['set_preferences', { prefs }],
      ['pause', { until: 'tomorrow' }],
      ['hide_panel', undefined],
    ]);
  });

  it('reject with an AppError, whatever the shell threw', async () => {
    recorder({ sign_in: { reject: { code: 'tls', message: 'bad cert' } }, sign_out: { reject: 'boom' } });
    await expect(commands.signIn('https://x', 'a@b', 'p')).rejects.toEqual({ code: 'tls', message: 'bad cert' });
    await expect(commands.signOut()).rejects.toEqual({ code: 'internal', message: 'boom' });
  });

  it('keep the fingerprint an untrusted certificate came with', async () => {
    const refusal = { code: 'untrusted_certificate', message: 'unknown', fingerprint: 'AB:CD' };
    recorder({ sign_in: { reject: refusal } });
    await expect(commands.signIn('https://x', 'a@b', 'p')).rejects.toEqual(refusal);
  });
});

describe('events', () => {
  it('hand the payload to the handler and can be unsubscribed', async () => {
    const { handlers } = recorder();
    const got: unknown[] = [];
    const off = await on('items-changed', (p) => got.push(p.tabs));
    handlers.get('items-changed')!({ tabs: ['emails'] });
    expect(got).toEqual([['emails']]);
    off();
    expect(handlers.has('items-changed')).toBe(false);
  });
});

describe('toAppError', () => {
  it('normalises what a rejected invoke may carry', () => {
    expect(toAppError({ code: 'x', message: 'y' })).toEqual({ code: 'x', message: 'y' });
    expect(toAppError({ code: 'x' })).toEqual({ code: 'x', message: '' });
    expect(toAppError(new Error('e'))).toEqual({ code: 'internal', message: 'e' });
    expect(toAppError(42)).toEqual({ code: 'internal', message: '42' });
  });
});
