/**
 * Browser notifications for critical notifications (deadlines, system errors): shown
 * with `requireInteraction` so they stay until dismissed, only by the tab that holds
 * the connection (the others would show the same one again), closed when the
 * notification is read or retracted anywhere, and reported to the gateway (`shown`)
 * for the deadline audit trail. Permission is asked only from a user gesture; when
 * it is refused the bell's badge is all there is.
 */

import type { TocsinClient } from "../client.js";
import type { InboxItem } from "../types.js";

export class Alerts {
  readonly #open = new Map<string, Notification>();
  readonly #off: Array<() => void> = [];

  constructor(
    private readonly client: TocsinClient,
    private readonly lang: () => string,
    private readonly onClick: (item: InboxItem) => void,
  ) {
    this.#off.push(
      client.on("notifications", ({ items, source }) => {
        if (source === "live") for (const item of items) this.#maybeShow(item);
      }),
      client.on("read", ({ ids }) => this.#close(ids)),
      client.on("retracted", ({ ids }) => this.#close(ids)),
    );
  }

  /** "default" (not asked yet), "granted", "denied", or "unsupported". */
  static permission(): NotificationPermission | "unsupported" {
    return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
  }

  /** Asks for permission; call from a click or key press only (browsers ignore it otherwise). */
  static async ask(): Promise<NotificationPermission | "unsupported"> {
    if (typeof Notification === "undefined") return "unsupported";
    if (Notification.permission !== "default") return Notification.permission;
    return Notification.requestPermission();
  }

  dispose(): void {
    for (const off of this.#off.splice(0)) off();
    this.#close([...this.#open.keys()]);
  }

  #maybeShow(item: InboxItem): void {
    const n = item.notification;
    if (n.urgency !== "critical" || item.read) return;
    if (Alerts.permission() !== "granted" || this.client.role === "follower") return;
    const alert = new Notification(n.title, { body: n.body, tag: n.id, requireInteraction: true, lang: this.lang() });
    this.#open.set(n.id, alert);
    alert.onclick = () => {
      globalThis.focus?.();
      alert.close();
      this.onClick(item);
    };
    alert.onclose = () => this.#open.delete(n.id);
    void this.client.shown([n.id]).catch(() => undefined);
  }

  #close(ids: readonly string[]): void {
    for (const id of ids) {
      this.#open.get(id)?.close();
      this.#open.delete(id);
    }
  }
}
