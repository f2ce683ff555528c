// Builders for unit tests: an Item with sensible defaults.
import type { Item } from './ipc';

export function makeItem(over: Partial<Item> & { id: string }): Item {
  return {
    kind: 'email-received',
    kind_name: over.kind ?? 'email-received',
    tab: 'emails',
    title: `Titre ${over.id}`,
    body: '',
    urgency: 'normal',
    created_at: '2026-11-26T08:00:00Z',
    read: false,
    dossier_number: null,
    data: {},
    url: null,
    proposal: null,
    deadline: null,
    ...over,
  };
}
