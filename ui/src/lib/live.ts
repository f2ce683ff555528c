// What the aria-live region says when live notifications arrive ("Nouveau : …").

import type { Item, Locale } from './ipc';
import { translate } from './i18n';

const MAX_TITLES = 3;

export function announcement(locale: Locale, items: readonly Pick<Item, 'title'>[]): string {
  if (items.length === 0) return '';
  if (items.length === 1) return translate(locale, 'live.new', { title: items[0].title });
  const titles = items.slice(0, MAX_TITLES).map((i) => i.title);
  if (items.length > MAX_TITLES) titles.push('…');
  return translate(locale, 'live.new_many', { count: items.length, titles: titles.join(', ') });
}
