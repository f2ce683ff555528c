import { describe, expect, it } from 'vitest';
import type { ActionResult, DeadlineRow, Item, Snapshot } from './ipc';
import { MOCK_FINGERPRINT, MockBackend } from './mock';

const flush = () => new Promise((r) => setTimeout(r, 0));

function backend(scenarios: string[] = []) {
  const b = new MockBackend({ scenarios, answerDelay: 0 });
  const events: [string, unknown][] = [];
  for (const e of ['state', 'items-changed', 'action-result', 'new-items']) {
    void b.listen(e, (p) => events.push([e, p]));
  }
  return { b, events };
}

describe('MockBackend (stands in for the shell in a browser)', () => {
  it('its snapshot counts unread per tab from its items', async () => {
    const { b } = backend();
    const s = (await b.invoke('snapshot')) as Snapshot;
    expect(s.signed_in).toBe(true);
    expect(s.unread).toEqual({ emails: 2, dossiers: 1, deadlines: 3, proposals: 2, system: 2 });
    expect(s.unread_total).toBe(10);
    expect(s.critical_pending).toBe(true);
    expect(s.unacknowledged_critical).toBe(2);
  });

  it('lists newest first, deadlines by due date, and pages with before', async () => {
    const { b } = backend();
    const emails = (await b.invoke('list_items', { tab: 'emails', limit: 50, before: null })) as Item[];
    const times = emails.map((i) => Date.parse(i.created_at));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    const deadlines = (await b.invoke('list_items', { tab: 'deadlines', limit: 50, before: null })) as Item[];
    const dues = deadlines.map((i) => Date.parse(i.deadline!.due_at));
    expect([...dues].sort((x, y) => x - y)).toEqual(dues);
    expect(deadlines.map((d) => d.deadline!.urgency)).toEqual(['critical', 'warning', 'critical', 'urgent', 'warning']);
    const page = (await b.invoke('list_items', { tab: 'emails', limit: 50, before: emails[0].id })) as Item[];
    expect(page.map((i) => i.id)).toEqual(emails.slice(1).map((i) => i.id));
  });

  it('open_link opens the link of the item it names, never one it is given', async () => {
    const { b } = backend();
    await b.invoke('open_link', { id: 'n-1006', url: 'javascript:alert(1)' });
    expect(b.opened).toEqual(['secib://dossier/2026-0142']);
    await expect(b.invoke('open_link', { id: 'n-1004' })).rejects.toMatchObject({ code: 'no_link' });
  });

  it('mark_read updates counts and emits items-changed then state', async () => {
    const { b, events } = backend();
    await b.invoke('mark_read', { ids: ['n-1007'] });
    await flush();
    expect(events.map((e) => e[0])).toEqual(['items-changed', 'state']);
    expect(events[0][1]).toEqual({ tabs: ['emails'] });
    expect((events[1][1] as Snapshot).unread.emails).toBe(1);
  });

  it('accepting a proposal answers with action-result and a new status', async () => {
    const { b, events } = backend();
    await b.invoke('respond_proposal', { proposalId: 'prop-8841', response: 'accept' });
    await new Promise((r) => setTimeout(r, 5));
    const result = events.find((e) => e[0] === 'action-result')![1] as ActionResult;
    expect(result).toEqual({ action: 'proposal', proposal_id: 'prop-8841', deadline_ids: [], ok: true, error: null });
    const list = (await b.invoke('list_items', { tab: 'proposals', limit: 50, before: null })) as Item[];
    expect(list.find((i) => i.proposal?.proposal_id === 'prop-8841')!.proposal!.status).toBe('accepted');
  });

  it('one sample proposal is refused, as if answered elsewhere', async () => {
    const { b, events } = backend();
    await b.invoke('respond_proposal', { proposalId: 'prop-8852', response: 'accept' });
    await new Promise((r) => setTimeout(r, 5));
    const result = events.find((e) => e[0] === 'action-result')![1] as ActionResult;
    expect(result.ok).toBe(false);
    expect(result.error?.message).toMatch(/autre appareil/);
  });

  it('list_deadlines groups alerts into one row per deadline, soonest due first', async () => {
    const { b } = backend();
    const rows = (await b.invoke('list_deadlines', { limit: 50 })) as DeadlineRow[];
    expect(rows.map((r) => r.deadline_id)).toEqual(['DL-3381', 'DL-3390', 'DL-3370', 'DL-3312']);
    const appeal = rows[0];
    expect(appeal.alert_ids).toEqual(['n-1005', 'n-0989']);
    expect(appeal.latest_alert_id).toBe('n-1005');
    expect(appeal.urgency).toBe('critical');
    expect(appeal.working_days_left).toBe(1);
    expect(appeal.acknowledged).toBeNull();
    expect(rows[1].escalation?.owner_name).toBe('Claire Dubois');
    expect(rows[3].acknowledged?.user_name).toBe('Marie Dupont');
  });

  it('acknowledge is pending at once, then named; the critical count goes down', async () => {
    const { b, events } = backend();
    await b.invoke('acknowledge', { deadlineIds: ['DL-3381'] });
    let rows = (await b.invoke('list_deadlines', { limit: 50 })) as DeadlineRow[];
    expect(rows[0].acknowledged).toMatchObject({ user_id: null, pending: true });
    await new Promise((r) => setTimeout(r, 5));
    rows = (await b.invoke('list_deadlines', { limit: 50 })) as DeadlineRow[];
    expect(rows[0].acknowledged).toMatchObject({ user_name: 'Camille Durand', pending: false });
    const last = events.filter((e) => e[0] === 'state').at(-1)![1] as Snapshot;
    expect(last.unacknowledged_critical).toBe(1);
    expect(last.unread.deadlines).toBe(3);
    expect(events.some((e) => e[0] === 'items-changed' && (e[1] as { tabs: string[] }).tabs.includes('deadlines'))).toBe(true);
  });

  it('offline, an acknowledgement is queued and a calendar link cannot be made', async () => {
    const { b } = backend(['offline']);
    await b.invoke('acknowledge', { deadlineIds: ['DL-3390'] });
    const s = (await b.invoke('snapshot')) as Snapshot;
    expect(s.pending_actions).toBe(4);
    expect(s.unacknowledged_critical).toBe(1);
    await expect(b.invoke('rotate_calendar_feed')).rejects.toMatchObject({ code: 'offline' });
  });

  it('a calendar link is made anew each time and turned off once', async () => {
    const { b } = backend();
    const first = (await b.invoke('rotate_calendar_feed')) as { url: string };
    const second = (await b.invoke('rotate_calendar_feed')) as { url: string };
    expect(first.url).toMatch(/^https:\/\/.+\/v1\/calendar\/.+\.ics$/);
    expect(second.url).not.toBe(first.url);
    expect(await b.invoke('revoke_calendar_feed')).toEqual({ revoked: true });
    expect(await b.invoke('revoke_calendar_feed')).toEqual({ revoked: false });
  });

  it('sign_in checks the URL like the shell does', async () => {
    const { b } = backend(['signedout']);
    const attempt = (server: string, password = 'secret') =>
      b.invoke('sign_in', { server, email: 'a@cabinet.fr', password }).catch((e) => e.code);
    expect(await attempt('pas une url')).toBe('invalid_url');
    expect(await attempt('http://gateway.cabinet.fr')).toBe('insecure_url');
    expect(await attempt('https://unreachable.example')).toBe('unreachable');
    expect(await attempt('https://gw.example', 'wrong')).toBe('unauthorized');
    const ok = (await b.invoke('sign_in', { server: 'http://localhost:8080', email: 'a@cabinet.fr', password: 'x' })) as Snapshot;
    expect(ok.signed_in).toBe(true);
    expect(ok.connection.state).toBe('connecting');
  });

  it('sign_in to a self-signed gateway asks for its fingerprint, then pins it', async () => {
    const { b } = backend(['signedout']);
    const server = 'https://selfsigned.cabinet.lan';
    const args = { server, email: 'a@cabinet.fr', password: 'x' };
    await expect(b.invoke('sign_in', args)).rejects.toMatchObject({
      code: 'untrusted_certificate',
      fingerprint: MOCK_FINGERPRINT,
    });
    await expect(b.invoke('sign_in', { ...args, fingerprint: '00:11' })).rejects.toMatchObject({
      code: 'certificate_changed',
    });
    const ok = (await b.invoke('sign_in', { ...args, fingerprint: MOCK_FINGERPRINT })) as Snapshot;
    expect(ok.signed_in).toBe(true);
    expect(MOCK_FINGERPRINT).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('commands other than sign-in need a signed-in session', async () => {
    const { b } = backend(['signedout']);
    await expect(b.invoke('list_items', { tab: 'emails', limit: 5, before: null })).rejects.toMatchObject({ code: 'not_signed_in' });
  });

  it('a language preference changes the snapshot locale; system goes back', async () => {
    const { b } = backend();
    const prefs = (await b.invoke('get_preferences')) as Record<string, unknown>;
    await b.invoke('set_preferences', { prefs: { ...prefs, language: 'en' } });
    expect(((await b.invoke('snapshot')) as Snapshot).locale).toBe('en');
    await b.invoke('set_preferences', { prefs: { ...prefs, language: 'system' } });
    expect(((await b.invoke('snapshot')) as Snapshot).locale).toBe('fr');
  });

  it('pause and resume', async () => {
    const { b } = backend();
    const paused = (await b.invoke('pause', { until: 'hour' })) as Snapshot;
    expect(paused.paused_until).not.toBeNull();
    const resumed = (await b.invoke('pause', { until: 'resume' })) as Snapshot;
    expect(resumed.paused_until).toBeNull();
  });

  it('take_navigation hands a pending navigation over once', async () => {
    const { b } = backend();
    b.setPendingNavigation({ view: 'inbox', tab: 'deadlines', item_id: 'n-1005' });
    expect(await b.invoke('take_navigation')).toEqual({ view: 'inbox', tab: 'deadlines', item_id: 'n-1005' });
    expect(await b.invoke('take_navigation')).toBeNull();
  });
});
