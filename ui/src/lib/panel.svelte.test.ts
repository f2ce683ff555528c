import { beforeEach, describe, expect, it } from 'vitest';
import { setTransport } from './ipc';
import { MockBackend } from './mock';
import { Panel } from './panel.svelte';
import { ui } from './locale.svelte';

const settle = (ms = 5) => new Promise((r) => setTimeout(r, ms));

let backend: MockBackend;

function start(scenarios: string[] = []) {
  backend = new MockBackend({ scenarios, answerDelay: 0, locale: 'fr' });
  setTransport(backend);
  return new Panel();
}

describe('Panel wired to a backend', () => {
  beforeEach(() => {
    ui.locale = 'en';
  });

  it('loads: snapshot, locale, inbox and the first tab', async () => {
    const p = start();
    await p.start();
    await settle();
    expect(p.shown).toBe('inbox');
    expect(ui.locale).toBe('fr');
    expect(p.lists.emails.loaded).toBe(true);
    expect(p.lists.emails.items.map((i) => i.id)).toEqual(['n-1007', 'n-1004', 'n-0998']);
    p.stop();
  });

  it('a pending navigation (take_navigation) opens the tab and asks to focus the item', async () => {
    const p = start();
    backend.setPendingNavigation({ view: 'inbox', tab: 'deadlines', item_id: 'n-1001' });
    await p.start();
    await settle();
    expect(p.view.tab).toBe('deadlines');
    expect(p.view.focusItem).toBe('n-1001');
    expect(p.deadlines.rows.some((r) => r.alert_ids.includes('n-1001'))).toBe(true);
    p.stop();
  });

  it('the Deadlines tab lists rows; Acknowledge is busy until the row shows who', async () => {
    const p = start();
    await p.start();
    p.selectTab('deadlines');
    await settle();
    expect(p.deadlines.loaded).toBe(true);
    const appeal = p.deadlines.rows.find((r) => r.deadline_id === 'DL-3381')!;
    expect(appeal.alert_ids).toHaveLength(2);
    const clicked = p.acknowledge(appeal);
    expect(p.acks['DL-3381']).toEqual({ busy: true, error: null });
    await clicked;
    await settle(20);
    const after = p.deadlines.rows.find((r) => r.deadline_id === 'DL-3381')!;
    expect(after.acknowledged?.user_name).toBe('Camille Durand');
    expect(p.acks['DL-3381']).toEqual({ busy: false, error: null });
    expect(p.snapshot?.unacknowledged_critical).toBe(1);
    p.stop();
  });

  it('a refused acknowledgement is said on its row, and proposals are left alone', async () => {
    const p = start();
    await p.start();
    p.selectTab('deadlines');
    await settle();
    p.proposalEvent({ type: 'clicked', proposal_id: 'prop-8841', response: 'accept' });
    p.ackEvent({ type: 'clicked', deadline_ids: ['DL-3390'] });
    backend.emit('action-result', {
      action: 'acknowledge',
      proposal_id: null,
      deadline_ids: ['DL-3390'],
      ok: false,
      error: { code: 'refused', message: 'deadline cancelled' },
    });
    await settle();
    expect(p.acks['DL-3390']).toEqual({ busy: false, error: 'deadline cancelled' });
    expect(p.proposals['prop-8841'].busy).toBe(true);
    p.stop();
  });

  it('a navigate event switches tab; state events replace the snapshot', async () => {
    const p = start();
    await p.start();
    backend.emit('navigate', { view: 'inbox', tab: 'system', item_id: null });
    await settle();
    expect(p.view.tab).toBe('system');
    // The notice, and the one of a kind from a newer gateway: shown, not dropped.
    expect(p.lists.system.items.map((i) => i.kind_name)).toEqual(['deadline-escalated', 'system-notification']);
    await p.markAllRead('system');
    await settle();
    expect(p.snapshot?.unread.system).toBe(0);
    expect(p.lists.system.items.every((i) => i.read)).toBe(true);
    p.stop();
  });

  it('"Open" names the item by id and the shell opens its own link; a failure is kept per item', async () => {
    const p = start();
    await p.start();
    await settle();
    const mail = p.lists.emails.items.find((i) => i.id === 'n-1007')!;
    expect(mail.url).toBe('https://ged.cabinet.fr/dossiers/2026-0142/courriers');
    await p.openLink(mail);
    expect(backend.opened).toEqual(['https://ged.cabinet.fr/dossiers/2026-0142/courriers']);
    expect(p.linkErrors).toEqual({});

    // An item whose link the shell no longer has (stale list): refused, said on that item.
    await p.openLink({ ...mail, id: 'n-gone' });
    expect(backend.opened).toHaveLength(1);
    expect(p.linkErrors['n-gone']?.code).toBe('no_link');
    // Without a link there is nothing to ask.
    await p.openLink({ ...mail, id: 'n-1004', url: null });
    expect(backend.opened).toHaveLength(1);
    p.stop();
  });

  it('items-changed re-fetches the visible tab only', async () => {
    const p = start();
    await p.start();
    await settle();
    backend.pushLive();
    await settle();
    expect(p.lists.emails.items[0].id).toBe('live-1');
    expect(p.snapshot?.unread.emails).toBe(3);
    p.stop();
  });

  it('new-items are announced in the live region', async () => {
    const p = start();
    await p.start();
    backend.pushLive();
    await settle(100);
    expect(p.liveText).toBe('Nouveau : Nouveau mail — 2026-0142');
    p.stop();
  });

  it('a proposal is busy until its action-result; a refusal is kept', async () => {
    const p = start();
    await p.start();
    p.selectTab('proposals');
    await settle();
    const busy = p.respond('prop-8852', 'accept');
    expect(p.proposals['prop-8852'].busy).toBe(true);
    await busy;
    await settle();
    expect(p.proposals['prop-8852'].busy).toBe(false);
    expect(p.proposals['prop-8852'].error).toMatch(/autre appareil/);

    await p.respond('prop-8841', 'accept');
    await settle();
    expect(p.proposals['prop-8841']).toEqual({ busy: false, response: 'accept', error: null });
    const item = p.lists.proposals.items.find((i) => i.proposal?.proposal_id === 'prop-8841');
    expect(item?.proposal?.status).toBe('accepted');
    p.stop();
  });

  it('signing out shows the sign-in form and forgets the lists; signing in comes back', async () => {
    const p = start();
    await p.start();
    await settle();
    p.openPreferences();
    expect(p.shown).toBe('preferences');
    await backend.invoke('sign_out');
    await settle();
    expect(p.shown).toBe('signin');
    expect(p.lists.emails.items).toHaveLength(0);
    await backend.invoke('sign_in', { server: 'https://gw.example', email: 'a@cabinet.fr', password: 'x' });
    await settle();
    expect(p.shown).toBe('inbox');
    expect(p.lists.emails.items.length).toBeGreaterThan(0);
    p.stop();
  });
});
