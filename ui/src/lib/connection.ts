// The connection as the header shows it: its label ("En direct — Cabinet Durand",
// "Connexion…", "Déconnecté depuis 10:42") and a detail line for the tooltip.

import type { Connection, Locale } from './ipc';
import { translate } from './i18n';
import { formatClock } from './time';

export function connectionLabel(conn: Connection, now: Date, locale: Locale, timeZone?: string): string {
  switch (conn.state) {
    case 'connected':
      return translate(locale, 'conn.connected', { tenant: conn.tenant });
    case 'connecting':
      return translate(locale, 'conn.connecting');
    case 'offline':
      return translate(locale, 'conn.offline', { time: formatClock(conn.since, now, locale, timeZone) });
    case 'signed_out':
      return translate(locale, 'conn.signed_out');
  }
}

/** A second line for the tooltip: since when, the next retry, or why it dropped. */
export function connectionDetail(conn: Connection, now: Date, locale: Locale, timeZone?: string): string {
  switch (conn.state) {
    case 'connected':
      return translate(locale, 'conn.connected_detail', { time: formatClock(conn.since, now, locale, timeZone) });
    case 'connecting':
      return conn.next_retry
        ? translate(locale, 'conn.connecting_detail', {
            attempt: conn.attempt,
            time: formatClock(conn.next_retry, now, locale, timeZone),
          })
        : translate(locale, 'conn.connecting_detail_now', { attempt: conn.attempt });
    case 'offline':
    case 'signed_out':
      return conn.reason;
  }
}
