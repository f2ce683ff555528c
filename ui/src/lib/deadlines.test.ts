import { describe, expect, it } from 'vitest';
import type { DeadlineAck, DeadlineRow } from './ipc';
import {
  ackButton,
  ackText,
  deadlinesBadge,
  escalationText,
  markRowsReadLocally,
  reduceAcks,
  rowBadge,
  rowForAlert,
  rowHeading,
  rowTone,
  workingDaysText,
} from './deadlines';

const NOW = new Date('2026-12-09T10:00:00Z');

function row(over: Partial<DeadlineRow> = {}): DeadlineRow {
  return {
    deadline_id: 'appel-2026-0142',
    deadline_type: 'Délai d’appel',
    dossier_number: '2026-0142',
    dossier_title: 'Dupont c/ Martin',
    due_at: '2026-12-14T23:59:00+01:00',
    time_zone: 'Europe/Paris',
    working_days_left: 2,
    remaining_days: 5,
    as_of: '2026-12-09T08:00:00Z',
    urgency: 'critical',
    critical: true,
    reminder: 'J-2',
    unread: true,
    alert_ids: ['n2', 'n1'],
    latest_alert_id: 'n2',
    title: 'Délai d’appel — 2026-0142',
    body: '',
    url: null,
    acknowledged: null,
    acknowledgements: [],
    escalation: null,
    ...over,
  };
}

const marie: DeadlineAck = {
  user_id: 'u-marie',
  user_name: 'Marie Dupont',
  device: 'Portable — Marie',
  at: '2026-12-09T08:05:12Z',
  pending: false,
};

describe('working days left', () => {
  it('reads "J-2 ouvrés" in French and "2 working days left" in English', () => {
    expect(workingDaysText('fr', 2)).toBe('J-2 ouvrés');
    expect(workingDaysText('en', 2)).toBe('2 working days left');
    expect(workingDaysText('fr', 1)).toBe('J-1 ouvré');
    expect(workingDaysText('en', 1)).toBe('1 working day left');
  });

  it('the due day, a past one, and an alert that did not count them', () => {
    expect(workingDaysText('fr', 0)).toBe('Jour J');
    expect(workingDaysText('en', 0)).toBe('Due today');
    expect(workingDaysText('fr', -1)).toBe('Échéance dépassée');
    expect(workingDaysText('en', null)).toBeNull();
  });
});

describe('acknowledgement wording', () => {
  it('names who, from which device, and when (local clock)', () => {
    expect(ackText('en', marie, NOW, 'Europe/Paris')).toBe(
      'Acknowledged by Marie Dupont (Portable — Marie) at 9:05 AM',
    );
    expect(ackText('fr', marie, NOW, 'Europe/Paris')).toBe(
      'Pris en compte par Marie Dupont (Portable — Marie) à 09:05',
    );
  });

  it('this device’s own, before the gateway confirms it, is "you, on this device"', () => {
    const mine: DeadlineAck = { user_id: null, user_name: '', device: null, at: '2026-12-09T08:05:00Z', pending: true };
    expect(ackText('fr', mine, NOW, 'Europe/Paris')).toBe(
      'Pris en compte par vous sur cet appareil à 09:05 — en attente de confirmation',
    );
    expect(ackText('en', mine, NOW, 'UTC')).toBe(
      'Acknowledged by you on this device at 8:05 AM — not yet confirmed',
    );
  });

  it('a colleague without a name or device still reads well; another day shows its date', () => {
    const anon: DeadlineAck = { ...marie, user_name: ' ', device: null, at: '2026-12-08T16:30:00Z' };
    expect(ackText('fr', anon, NOW, 'Europe/Paris')).toBe('Pris en compte par un collègue à 8 déc., 17:30');
  });

  it('an escalation says whose deadline was not taken in', () => {
    expect(escalationText('fr', { step: 1, owner: 'u-marie', owner_name: 'Marie' })).toBe(
      'Marie n’a pas pris en compte ce délai',
    );
    expect(escalationText('en', { step: 2, owner: 'u-marie', owner_name: '' })).toBe(
      'Its owner has not acknowledged this deadline',
    );
  });

  it('the heading names the type and the dossier', () => {
    expect(rowHeading(row())).toBe('Délai d’appel — 2026-0142 · Dupont c/ Martin');
    expect(rowHeading(row({ dossier_number: null, dossier_title: null }))).toBe('Délai d’appel');
  });
});

describe('the row’s look and the tab’s badge', () => {
  it('a critical deadline looks critical only until someone takes it in', () => {
    expect(rowTone(row())).toBe('critical');
    expect(rowBadge(row())).toEqual({ tone: 'critical', label: 'deadline.urgency.critical', muted: false });
    const taken = row({ acknowledged: marie, acknowledgements: [marie] });
    expect(rowTone(taken)).toBe('done');
    expect(rowBadge(taken).muted).toBe(true);
    expect(rowTone(row({ urgency: 'urgent', critical: false }))).toBe('high');
    expect(rowTone(row({ urgency: 'warning', critical: false }))).toBe('warning');
  });

  it('the Deadlines badge counts critical deadlines nobody acknowledged', () => {
    expect(deadlinesBadge({ unacknowledged_critical: 2 })).toEqual({ count: 2, critical: true });
    expect(deadlinesBadge({ unacknowledged_critical: 0 })).toEqual({ count: 0, critical: false });
  });

  it('a navigation to any alert of a deadline lands on its row', () => {
    const rows = [row(), row({ deadline_id: 'D2', alert_ids: ['n9'], latest_alert_id: 'n9' })];
    expect(rowForAlert(rows, 'n1')?.deadline_id).toBe('appel-2026-0142');
    expect(rowForAlert(rows, 'n9')?.deadline_id).toBe('D2');
    expect(rowForAlert(rows, 'gone')).toBeNull();
    expect(rowForAlert(rows, null)).toBeNull();
  });

  it('mark read clears the row’s unread look locally', () => {
    const rows = [row(), row({ deadline_id: 'D2' })];
    expect(markRowsReadLocally(rows, ['D2']).map((r) => r.unread)).toEqual([true, false]);
    expect(markRowsReadLocally(rows, 'all').every((r) => !r.unread)).toBe(true);
  });
});

describe('the Acknowledge button', () => {
  it('is offered while nobody took it in, busy from the click until the row shows it', () => {
    const r = row();
    expect(ackButton(r, undefined)).toEqual({ shown: true, disabled: false, busy: false });
    let s = reduceAcks({}, { type: 'clicked', deadline_ids: [r.deadline_id] });
    expect(ackButton(r, s[r.deadline_id])).toEqual({ shown: true, disabled: true, busy: true });
    // The shell applies it at once (pending, offline too): the row shows it, no button.
    const pending = row({ acknowledged: { ...marie, user_id: null, pending: true } });
    s = reduceAcks(s, { type: 'rows', rows: [pending] });
    expect(s[r.deadline_id]).toEqual({ busy: false, error: null });
    expect(ackButton(pending, s[r.deadline_id]).shown).toBe(false);
  });

  it('a failed command or a refusal is kept on its deadline; proposals’ results are ignored', () => {
    let s = reduceAcks({}, { type: 'clicked', deadline_ids: ['D1', 'D2'] });
    s = reduceAcks(s, { type: 'failed', deadline_ids: ['D1'], error: { code: 'not_signed_in', message: 'Not signed in' } });
    expect(s.D1).toEqual({ busy: false, error: 'Not signed in' });
    const before = s;
    s = reduceAcks(s, {
      type: 'result',
      result: { action: 'proposal', proposal_id: 'p1', deadline_ids: [], ok: false, error: { code: 'refused', message: 'x' } },
    });
    expect(s).toBe(before);
    s = reduceAcks(s, {
      type: 'result',
      result: { action: 'acknowledge', proposal_id: null, deadline_ids: ['D2'], ok: false, error: { code: 'refused', message: 'gone' } },
    });
    expect(s.D2).toEqual({ busy: false, error: 'gone' });
    // A fresh list where it is still not acknowledged keeps the error.
    expect(reduceAcks(s, { type: 'rows', rows: [row({ deadline_id: 'D2' })] })).toBe(s);
  });
});
