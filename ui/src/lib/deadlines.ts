// The Deadlines tab's words and states, pure: working days left ("J-2 ouvrés"), who
// took a deadline in and when, the escalation note, the row's look (a deadline taken in
// keeps no critical look, whatever its unread alerts), the tab's badge, the Acknowledge
// button's state from the click to the row showing it (or a refusal), and which row a
// navigation to one of its alerts lands on.

import type { ActionResult, AppError, DeadlineAck, DeadlineRow, Escalation, Locale, Snapshot } from './ipc';
import { plural, translate } from './i18n';
import type { Tone, UrgencyBadge } from './items';
import { formatClock } from './time';

/** "J-2 ouvrés" / "2 working days left"; "Jour J"; null when the alert did not count them. */
export function workingDaysText(locale: Locale, days: number | null): string | null {
  if (days === null || !Number.isFinite(days)) return null;
  if (days < 0) return translate(locale, 'deadline.working.past');
  if (days === 0) return translate(locale, 'deadline.working.today');
  // French counts 0 and 1 as singular: 0 is handled above, so "J-1 ouvré".
  return plural(locale, 'deadline.working', days);
}

/** Who, as a row says it: "Marie Dupont (Portable — Marie)", or "you on this device". */
function isMine(ack: DeadlineAck): boolean {
  return ack.user_id === null;
}

/** "Pris en compte par Marie Dupont (Portable — Marie) à 09:05"; this device's own
 *  while the gateway has not confirmed it: "… par vous sur cet appareil … — en attente". */
export function ackText(locale: Locale, ack: DeadlineAck, now: Date, timeZone?: string): string {
  const time = formatClock(ack.at, now, locale, timeZone);
  let text: string;
  if (isMine(ack)) {
    text = translate(locale, 'ack.by_me', { time });
  } else {
    const name = ack.user_name.trim() || translate(locale, 'ack.someone');
    const who = ack.device?.trim() ? `${name} (${ack.device.trim()})` : name;
    text = translate(locale, 'ack.by', { who, time });
  }
  return ack.pending ? `${text} — ${translate(locale, 'ack.pending')}` : text;
}

/** "Marie n'a pas pris en compte ce délai": why someone else's deadline is here. */
export function escalationText(locale: Locale, escalation: Escalation): string {
  const owner = escalation.owner_name.trim();
  return owner
    ? translate(locale, 'escalation.from', { owner })
    : translate(locale, 'escalation.anonymous');
}

/** "Délai d'appel — 2026-0142 · Dupont c/ Martin": what the deadline is about. */
export function rowHeading(row: DeadlineRow): string {
  const dossier = [row.dossier_number, row.dossier_title].filter((p): p is string => !!p?.trim());
  return dossier.length ? `${row.deadline_type} — ${dossier.join(' · ')}` : row.deadline_type;
}

/** The row's tone: critical only while nobody took it in; once taken in, calm. */
export function rowTone(row: DeadlineRow): Tone | 'done' {
  if (row.acknowledged) return 'done';
  if (row.critical || row.urgency === 'critical') return 'critical';
  if (row.urgency === 'urgent') return 'high';
  return row.urgency;
}

/** The current urgency badge (words, never colour alone); muted once taken in. */
export function rowBadge(row: DeadlineRow): UrgencyBadge & { muted: boolean } {
  const u = row.urgency;
  const tone: Tone = u === 'critical' ? 'critical' : u === 'urgent' ? 'high' : u;
  return { tone, label: `deadline.urgency.${u}`, muted: row.acknowledged !== null };
}

/** The Deadlines tab's badge: critical deadlines nobody acknowledged (not unread alerts). */
export function deadlinesBadge(snapshot: Pick<Snapshot, 'unacknowledged_critical'>): {
  count: number;
  critical: boolean;
} {
  const count = Math.max(0, snapshot.unacknowledged_critical ?? 0);
  return { count, critical: count > 0 };
}

/** The row a navigation to `alertId` (a toast's notification) lands on. */
export function rowForAlert(rows: readonly DeadlineRow[], alertId: string | null): DeadlineRow | null {
  if (!alertId) return null;
  return rows.find((r) => r.deadline_id === alertId || r.alert_ids.includes(alertId)) ?? null;
}

// ---- the Acknowledge button, per deadline ----

export interface AckUi {
  /** From the click until the row shows an acknowledgement (or the command fails). */
  busy: boolean;
  /** Why it did not hold: the command failed, or the gateway refused it (undone). */
  error: string | null;
}
export type AcksUi = Readonly<Record<string, AckUi>>;

export type AckEvent =
  | { type: 'clicked'; deadline_ids: string[] }
  | { type: 'failed'; deadline_ids: string[]; error: AppError }
  | { type: 'result'; result: ActionResult }
  /** A fresh list: rows that now show an acknowledgement are no longer busy. */
  | { type: 'rows'; rows: readonly DeadlineRow[] };

export function reduceAcks(state: AcksUi, event: AckEvent): AcksUi {
  switch (event.type) {
    case 'clicked': {
      const next: Record<string, AckUi> = { ...state };
      for (const id of event.deadline_ids) next[id] = { busy: true, error: null };
      return next;
    }
    case 'failed': {
      const next: Record<string, AckUi> = { ...state };
      const error = event.error.message || event.error.code;
      for (const id of event.deadline_ids) next[id] = { busy: false, error };
      return next;
    }
    case 'result': {
      const { result } = event;
      if (result.action !== 'acknowledge' || result.ok) return state;
      const error = result.error?.message || result.error?.code || null;
      const next: Record<string, AckUi> = { ...state };
      for (const id of result.deadline_ids) next[id] = { busy: false, error };
      return next;
    }
    case 'rows': {
      let changed = false;
      const next: Record<string, AckUi> = { ...state };
      for (const row of event.rows) {
        const entry = state[row.deadline_id];
        if (entry?.busy && row.acknowledged) {
          next[row.deadline_id] = { busy: false, error: null };
          changed = true;
        }
      }
      return changed ? next : state;
    }
  }
}

export interface AckButton {
  /** Offered only while nobody took the deadline in. */
  shown: boolean;
  disabled: boolean;
  busy: boolean;
}

/** The button of a row. Offline it works as online: the shell queues the acknowledgement. */
export function ackButton(row: DeadlineRow, entry: AckUi | undefined): AckButton {
  const busy = entry?.busy === true;
  return { shown: row.acknowledged === null, disabled: busy, busy };
}

/** Marks rows read locally after "mark read" on them (or the whole tab). */
export function markRowsReadLocally(rows: readonly DeadlineRow[], ids: readonly string[] | 'all'): DeadlineRow[] {
  const wanted = ids === 'all' ? null : new Set(ids);
  return rows.map((r) => (r.unread && (!wanted || wanted.has(r.deadline_id)) ? { ...r, unread: false } : r));
}
