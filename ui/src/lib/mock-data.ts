// Sample items for the mock backend: a morning at a Paris firm (a mail on dossier
// 2026-0142, a dossier update, deadlines at warning/urgent/critical — one with two
// alerts, one escalated from a colleague, one already acknowledged —, appointment
// proposals, a system notice, a notice of a kind from a newer gateway), dated relative
// to `now` so relative times read well. Some carry a link into the firm's software.

import type { DeadlineAck, Item, Kind, Tab, Urgency } from './ipc';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `days` from now at hh:mm local time. */
function at(now: number, days: number, hh: number, mm: number): string {
  const d = new Date(now + days * DAY);
  d.setHours(hh, mm, 0, 0);
  return d.toISOString();
}

interface Base {
  id: string;
  kind: Kind;
  tab: Tab;
  title: string;
  body: string;
  urgency: Urgency;
  created_at: string;
  read: boolean;
  dossier_number?: string | null;
  data: Record<string, unknown>;
  /** The wire name; defaults to `kind`. */
  kind_name?: string;
  url?: string | null;
}

function item(b: Base, extra: Partial<Pick<Item, 'proposal' | 'deadline'>> = {}): Item {
  return {
    ...b,
    kind_name: b.kind_name ?? b.kind,
    url: b.url ?? null,
    dossier_number: b.dossier_number ?? (typeof b.data.dossier_number === 'string' ? b.data.dossier_number : null),
    proposal: extra.proposal ?? null,
    deadline: extra.deadline ?? null,
  };
}

export function sampleItems(nowMs: number = Date.now()): Item[] {
  const ago = (ms: number) => iso(nowMs - ms);
  const criticalDue = at(nowMs, 1, 12, 0);
  const escalatedDue = at(nowMs, 2, 9, 0);
  const urgentDue = at(nowMs, 2, 17, 0);
  const warningDue = at(nowMs, 3, 23, 59);
  const firstStart = at(nowMs, 2, 14, 30);
  const secondStart = at(nowMs, 4, 10, 0);
  return [
    item({
      id: 'n-1007', kind: 'email-received', tab: 'emails', urgency: 'normal', read: false,
      title: 'Nouveau mail — 2026-0142',
      body: 'Maître Martin : Conclusions adverses. Veuillez trouver ci-joint nos conclusions en réponse, ainsi que le bordereau de communication de pièces.',
      created_at: ago(6 * MIN),
      url: 'https://ged.cabinet.fr/dossiers/2026-0142/courriers',
      data: { subject: 'Conclusions adverses', from: 'Maître Martin <martin@exemple.fr>', dossier_number: '2026-0142', has_attachments: true },
    }),
    item({
      id: 'n-1004', kind: 'email-received', tab: 'emails', urgency: 'normal', read: false,
      title: 'Nouveau mail — 2025-0871',
      body: 'Greffe du tribunal judiciaire de Lyon : convocation à l’audience de mise en état du 4 décembre à 9 h 30.',
      created_at: ago(2 * HOUR + 12 * MIN),
      data: { subject: 'Convocation — mise en état', from: 'Greffe TJ Lyon <greffe.tj-lyon@justice.fr>', dossier_number: '2025-0871' },
    }),
    item({
      id: 'n-0998', kind: 'email-received', tab: 'emails', urgency: 'normal', read: true,
      title: 'Nouveau mail — 2026-0142',
      body: 'Mme Lefèvre : pièces complémentaires (bail commercial, avenant de 2019, échanges avec le bailleur).',
      created_at: ago(DAY + 3 * HOUR),
      data: { subject: 'Pièces complémentaires', from: 'Hélène Lefèvre <h.lefevre@exemple.fr>', dossier_number: '2026-0142', has_attachments: true },
    }),
    item({
      id: 'n-1006', kind: 'dossier-updated', tab: 'dossiers', urgency: 'normal', read: false,
      title: 'Dossier 2026-0142 — pièce ajoutée',
      body: 'Lefèvre c/ SCI Les Tilleuls : « Rapport d’expertise.pdf » a été ajouté au dossier.',
      created_at: ago(35 * MIN),
      url: 'secib://dossier/2026-0142',
      data: { dossier_number: '2026-0142', action: 'document_added', dossier_title: 'Lefèvre c/ SCI Les Tilleuls', document_name: 'Rapport d’expertise.pdf' },
    }),
    item({
      id: 'n-0995', kind: 'dossier-updated', tab: 'dossiers', urgency: 'normal', read: true,
      title: 'Dossier 2025-0871 — en délibéré',
      body: 'Société Arvel c/ Transports Morin : statut passé de « plaidé » à « en délibéré ». Décision attendue le 15 janvier.',
      created_at: ago(3 * DAY),
      data: { dossier_number: '2025-0871', action: 'status_changed', status: 'en délibéré', previous_status: 'plaidé' },
    }),
    item(
      {
        id: 'n-1005', kind: 'deadline-alert', tab: 'deadlines', urgency: 'critical', read: false,
        title: 'Délai d’appel — 2026-0142',
        body: 'Dernier jour pour interjeter appel du jugement du TJ de Paris (Lefèvre c/ SCI Les Tilleuls).',
        created_at: ago(50 * MIN),
        url: 'https://ged.cabinet.fr/dossiers/2026-0142/delais',
        data: { deadline_id: 'DL-3381', deadline_type: 'Délai d’appel', due_at: criticalDue, time_zone: 'Europe/Paris', urgency: 'critical', remaining_days: 1, working_days_left: 1, reminder: 'J-1', dossier_number: '2026-0142', dossier_title: 'Lefèvre c/ SCI Les Tilleuls' },
      },
      { deadline: { due_at: criticalDue, urgency: 'critical', remaining_days: 1, deadline_type: 'Délai d’appel' } },
    ),
    item(
      {
        id: 'n-0989', kind: 'deadline-alert', tab: 'deadlines', urgency: 'normal', read: true,
        title: 'Délai d’appel — 2026-0142',
        body: 'Appel du jugement du TJ de Paris à interjeter sous trois jours ouvrés.',
        created_at: ago(2 * DAY + HOUR),
        data: { deadline_id: 'DL-3381', deadline_type: 'Délai d’appel', due_at: criticalDue, time_zone: 'Europe/Paris', urgency: 'warning', remaining_days: 3, working_days_left: 3, reminder: 'J-3', dossier_number: '2026-0142', dossier_title: 'Lefèvre c/ SCI Les Tilleuls' },
      },
      { deadline: { due_at: criticalDue, urgency: 'warning', remaining_days: 3, deadline_type: 'Délai d’appel' } },
    ),
    item(
      {
        id: 'n-1009', kind: 'deadline-alert', tab: 'deadlines', urgency: 'critical', read: false,
        title: 'Délai de pourvoi — 2025-0614',
        body: 'Escalade : Maître Dubois n’a pas pris ce délai en compte.',
        created_at: ago(20 * MIN),
        data: { deadline_id: 'DL-3390', deadline_type: 'Délai de pourvoi', due_at: escalatedDue, time_zone: 'Europe/Paris', urgency: 'critical', remaining_days: 2, working_days_left: 2, reminder: 'J-2', dossier_number: '2025-0614', escalation: { step: 1, owner: 'u-dubois', owner_name: 'Claire Dubois' } },
      },
      { deadline: { due_at: escalatedDue, urgency: 'critical', remaining_days: 2, deadline_type: 'Délai de pourvoi' } },
    ),
    item(
      {
        id: 'n-1001', kind: 'deadline-alert', tab: 'deadlines', urgency: 'high', read: false,
        title: 'Conclusions à signifier — 2025-0871',
        body: 'Conclusions d’intimé à notifier par RPVA avant l’échéance fixée par le conseiller de la mise en état.',
        created_at: ago(5 * HOUR),
        data: { deadline_id: 'DL-3370', deadline_type: 'Conclusions', due_at: urgentDue, time_zone: 'Europe/Paris', urgency: 'urgent', remaining_days: 2, working_days_left: 2, dossier_number: '2025-0871' },
      },
      { deadline: { due_at: urgentDue, urgency: 'urgent', remaining_days: 2, deadline_type: 'Conclusions' } },
    ),
    item(
      {
        id: 'n-0990', kind: 'deadline-alert', tab: 'deadlines', urgency: 'normal', read: true,
        title: 'Prescription — 2024-0310',
        body: 'Action en responsabilité contractuelle : prescription quinquennale à interrompre.',
        created_at: ago(DAY + 2 * HOUR),
        data: { deadline_id: 'DL-3312', deadline_type: 'Prescription', due_at: warningDue, time_zone: 'Europe/Paris', urgency: 'warning', remaining_days: 3, working_days_left: 3, dossier_number: '2024-0310' },
      },
      { deadline: { due_at: warningDue, urgency: 'warning', remaining_days: 3, deadline_type: 'Prescription' } },
    ),
    item(
      {
        id: 'n-1003', kind: 'proposal-created', tab: 'proposals', urgency: 'high', read: false,
        title: 'Rendez-vous client — 2026-0142',
        body: 'Préparation de l’audience avec Mme Lefèvre.',
        created_at: ago(25 * MIN),
        data: { proposal_id: 'prop-8841', starts_at: firstStart, ends_at: iso(Date.parse(firstStart) + HOUR), proposed_by: 'Maître Claire Dubois', location: 'Cabinet — salle Portalis', dossier_number: '2026-0142' },
      },
      { proposal: { proposal_id: 'prop-8841', status: 'pending', starts_at: firstStart, ends_at: iso(Date.parse(firstStart) + HOUR), proposed_by: 'Maître Claire Dubois', location: 'Cabinet — salle Portalis' } },
    ),
    item(
      {
        id: 'n-1002', kind: 'proposal-created', tab: 'proposals', urgency: 'high', read: false,
        title: 'Visioconférence avec l’expert — 2025-0871',
        body: 'Point sur le pré-rapport d’expertise.',
        created_at: ago(4 * HOUR),
        data: { proposal_id: 'prop-8852', starts_at: secondStart, proposed_by: 'M. Bernard, expert judiciaire', location: 'Visioconférence', dossier_number: '2025-0871' },
      },
      { proposal: { proposal_id: 'prop-8852', status: 'pending', starts_at: secondStart, ends_at: null, proposed_by: 'M. Bernard, expert judiciaire', location: 'Visioconférence' } },
    ),
    item(
      {
        id: 'n-0981', kind: 'proposal-created', tab: 'proposals', urgency: 'high', read: true,
        title: 'Réunion d’équipe — point hebdomadaire',
        body: '',
        created_at: ago(2 * DAY),
        data: { proposal_id: 'prop-8790', starts_at: at(nowMs, 1, 9, 0), proposed_by: 'Maître Antoine Durand', location: null },
      },
      { proposal: { proposal_id: 'prop-8790', status: 'accepted', starts_at: at(nowMs, 1, 9, 0), ends_at: at(nowMs, 1, 9, 45), proposed_by: 'Maître Antoine Durand', location: null } },
    ),
    item({
      id: 'n-1000', kind: 'system-notification', tab: 'system', urgency: 'normal', read: false,
      title: 'Maintenance programmée ce soir',
      body: 'La passerelle du cabinet sera indisponible de 22 h à 22 h 30 pour une mise à jour. Les notifications manquées seront rattrapées à la reconnexion.',
      created_at: ago(90 * MIN),
      data: { level: 'info', code: 'maintenance' },
    }),
    item({
      id: 'n-1008', kind: 'unknown', kind_name: 'deadline-escalated', tab: 'system', urgency: 'high', read: false,
      title: 'Délai d’appel escaladé — 2026-0142',
      body: 'Sans réponse de Maître Dubois, le délai a été confié à Maître Roux.',
      created_at: ago(15 * MIN),
      data: { deadline_id: 'DL-3381', escalated_to: 'u-roux', level: 2 },
    }),
  ];
}

/** Who already acknowledged which sample deadline. */
export function sampleAcknowledgements(nowMs: number = Date.now()): Record<string, DeadlineAck[]> {
  return {
    'DL-3312': [
      { user_id: 'u-dupont', user_name: 'Marie Dupont', device: 'Portable — Marie', at: iso(nowMs - DAY), pending: false },
    ],
  };
}

/** A new mail for the `live` scenario, as if it had just arrived. */
export function liveEmail(n: number, nowMs: number = Date.now()): Item {
  return item({
    id: `live-${n}`, kind: 'email-received', tab: 'emails', urgency: 'normal', read: false,
    title: 'Nouveau mail — 2026-0142',
    body: `Maître Martin : relance n° ${n} concernant le calendrier de procédure.`,
    created_at: new Date(nowMs).toISOString(),
    data: { subject: 'Relance', from: 'Maître Martin <martin@exemple.fr>', dossier_number: '2026-0142' },
  });
}
