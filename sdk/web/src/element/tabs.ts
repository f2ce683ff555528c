/**
 * The bell's tabs: the desktop panel's five, in its order, and which kinds each
 * shows (the same mapping as tocsin-client's `Tab::of`). A kind this build does not
 * know is a generic notice under System.
 */

export const TABS = ["emails", "dossiers", "deadlines", "proposals", "system"] as const;
export type Tab = (typeof TABS)[number];

const KINDS: Record<Tab, readonly string[]> = {
  emails: ["email-received", "conversation-message"],
  dossiers: ["dossier-updated"],
  deadlines: ["deadline-alert"],
  proposals: ["proposal-created", "proposal-status-changed"],
  system: ["system-notification"],
};

/** The kinds a tab lists, known ones only (System also takes unknown kinds: see {@link tabOf}). */
export function kindsOf(tab: Tab): readonly string[] {
  return KINDS[tab];
}

/** The tab a notification of `kind` is listed under. */
export function tabOf(kind: string): Tab {
  for (const tab of TABS) if (KINDS[tab].includes(kind)) return tab;
  return "system";
}

/** The WAI-ARIA tabs keyboard pattern: Left/Right wrap around, Home/End jump. */
export function tabKeyTarget(key: string, index: number, count: number): number | null {
  switch (key) {
    case "ArrowRight":
      return (index + 1) % count;
    case "ArrowLeft":
      return (index - 1 + count) % count;
    case "Home":
      return 0;
    case "End":
      return count - 1;
    default:
      return null;
  }
}
