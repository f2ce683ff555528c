// The panel's icons as SVG path data (24×24, stroked), drawn by Icon.svelte: no image
// files, no icon font (the CSP allows neither from elsewhere). Kind → icon mapping too.

import type { Kind, KnownKind, Urgency } from './ipc';

const circle = (cx: number, cy: number, r: number) =>
  `M${cx - r} ${cy}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0`;

export const ICONS = {
  mail: ['M3 7a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z', 'm3.5 7 8.5 6 8.5-6'],
  folder: ['M3 7a2 2 0 0 1 2-2h4.2l2 2H19a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z'],
  hourglass: [
    'M6 3h12',
    'M6 21h12',
    'M7.5 3v2.6a5 5 0 0 0 2 4L12 12l2.5-2.4a5 5 0 0 0 2-4V3',
    'M7.5 21v-2.6a5 5 0 0 1 2-4L12 12l2.5 2.4a5 5 0 0 1 2 4V21',
  ],
  calendar: ['M4 7a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2z', 'M4 10h16', 'M8 3v4', 'M16 3v4'],
  calendarCheck: [
    'M4 7a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2z',
    'M4 10h16',
    'M8 3v4',
    'M16 3v4',
    'm9 15.5 2 2 4-4',
  ],
  info: [circle(12, 12, 9), 'M12 11v5', 'M12 7.8v.1'],
  chat: ['M20 12a8 8 0 0 1-11.7 7.1L4 20l1-4.1A8 8 0 1 1 20 12z'],
  gear: [
    circle(12, 12, 3),
    'M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z',
  ],
  back: ['M19 12H5', 'm11 18-6-6 6-6'],
  check: ['M20 6 9 17l-5-5'],
  checkAll: ['M17 6 7 16l-4-4', 'm21.5 8.5-7.5 7.5-1.5-1.5'],
  x: ['M18 6 6 18', 'm6 6 12 12'],
  critical: ['M7.9 2.5h8.2l5.4 5.4v8.2l-5.4 5.4H7.9l-5.4-5.4V7.9z', 'M12 7.5v5', 'M12 16.2v.1'],
  warning: ['M10.3 3.9 1.9 18a2 2 0 0 0 1.7 3h16.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z', 'M12 9v4.5', 'M12 17.2v.1'],
  bell: ['M6 9a6 6 0 0 1 12 0c0 6.5 2.5 8.5 2.5 8.5h-17S6 15.5 6 9', 'M10.2 20.5a2 2 0 0 0 3.6 0'],
  bellOff: [
    'M8.7 3.9A6 6 0 0 1 18 9c0 3 .6 5.1 1.3 6.4',
    'M17 17.5H3.5S6 15.5 6 9c0-.6.1-1.2.3-1.8',
    'M10.2 20.5a2 2 0 0 0 3.6 0',
    'm3 3 18 18',
  ],
  cloudOff: ['m3 3 18 18', 'M8.5 6.2A6.5 6.5 0 0 1 18.3 11h.2a4 4 0 0 1 2.4 7.2', 'M17 19H7a5 5 0 0 1-1.3-9.8'],
  pause: ['M9 5v14', 'M15 5v14'],
  key: [circle(7.5, 15.5, 4.5), 'M10.7 12.3 20 3', 'm16 7 3 3', 'm18.5 4.5 2 2'],
  pin: ['M19 10c0 5.5-7 11-7 11s-7-5.5-7-11a7 7 0 0 1 14 0z', circle(12, 10, 2.5)],
  user: [circle(12, 8, 4), 'M4.5 20.5a7.5 7.5 0 0 1 15 0'],
  inbox: [
    'M21.5 12.5h-5.7l-1.9 3h-3.8l-1.9-3H2.5',
    'M5.5 5.1 2.5 12.5V18a2 2 0 0 0 2 2h15a2 2 0 0 0 2-2v-5.5l-3-7.4A2 2 0 0 0 16.7 4H7.3a2 2 0 0 0-1.8 1.1z',
  ],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4', 'm16 17 5-5-5-5', 'M21 12H9'],
  refresh: ['M20.5 12a8.5 8.5 0 1 1-2.5-6', 'M20.5 3.5V8H16'],
  spinner: ['M21 12a9 9 0 1 1-6.2-8.6'],
  external: ['M14 4h6v6', 'M20 4l-9 9', 'M18 14v4a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h4'],
  copy: ['M9 9h10a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H11a2 2 0 0 1-2-2z', 'M5 15a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h8a2 2 0 0 1 2 2'],
  userCheck: [circle(9, 8, 4), 'M2.5 20.5a6.5 6.5 0 0 1 11.5-4', 'm15 18 2 2 4-4'],
  paperclip: ['m20.5 11.5-8.4 8.4a5 5 0 0 1-7.1-7.1l8.4-8.4a3.3 3.3 0 0 1 4.7 4.7l-8.4 8.4a1.7 1.7 0 0 1-2.4-2.4l7.8-7.7'],
} as const satisfies Record<string, readonly string[]>;

export type IconName = keyof typeof ICONS;

export const KIND_ICON: Record<KnownKind, IconName> = {
  'email-received': 'mail',
  'dossier-updated': 'folder',
  'deadline-alert': 'hourglass',
  'system-notification': 'info',
  'proposal-created': 'calendar',
  'proposal-status-changed': 'calendarCheck',
  'conversation-message': 'chat',
};

/** A system notice's icon follows its level (warning, error) when it has one; a kind from
 *  a newer gateway is a system notice whose level is its urgency. */
export function kindIcon(kind: Kind, data: Record<string, unknown>, urgency: Urgency = 'normal'): IconName {
  if (kind === 'system-notification') {
    if (data?.level === 'error') return 'critical';
    if (data?.level === 'warning') return 'warning';
    if (data?.level === 'success') return 'check';
  }
  if (kind === 'unknown') {
    if (urgency === 'critical') return 'critical';
    if (urgency === 'high') return 'warning';
    return 'info';
  }
  return KIND_ICON[kind] ?? 'bell';
}
