/**
 * What a close code means for the client (PROTOCOL.md §5): reconnect with backoff,
 * refresh the token first, wait what the gateway asked, or stop and say why.
 * Codes this build does not know are decided by their range.
 */

import { CLOSE_CODES } from "./protocol/index.js";

/** Why the client stopped reconnecting on its own. */
export type StopReason =
  /** The token was refused even after a fresh one: the host app must sign the user in. */
  | "signed_out"
  /** The user is disabled or the firm unknown: tell the user to contact the firm's administrator. */
  | "forbidden"
  /** The user has too many connections open: close another device or window, then retry. */
  | "too_many_connections"
  /** The gateway refused what this client sent (a bug here): see the error message. */
  | "client_error"
  /** The gateway closed normally, or with a code outside the reconnect ranges. */
  | "closed"
  /** The host app called `stop()`. */
  | "stopped";

/** The decision for one close. */
export type CloseDecision =
  | { action: "reconnect" }
  | { action: "refresh" }
  | { action: "wait"; ms: number }
  | { action: "reject_token" }
  | { action: "stop"; reason: StopReason };

/** The close codes of the gateway by name, for readability below. */
const TOKEN_EXPIRED = 4002;
const RATE_LIMITED = 4003;
const INVALID_TOKEN = 4100;
const FORBIDDEN = 4101;
const TOO_MANY_CONNECTIONS = 4104;

/** What to do after the socket closed with `code` and `reason`. */
export function decideClose(code: number, reason: string): CloseDecision {
  switch (code) {
    case TOKEN_EXPIRED:
      return { action: "refresh" };
    case RATE_LIMITED:
      return { action: "wait", ms: retryAfter(reason) };
    case INVALID_TOKEN:
      return { action: "reject_token" };
    case FORBIDDEN:
      return { action: "stop", reason: "forbidden" };
    case TOO_MANY_CONNECTIONS:
      return { action: "stop", reason: "too_many_connections" };
  }
  const known = (CLOSE_CODES as Record<number, { reconnect: boolean } | undefined>)[code];
  if (known) return known.reconnect ? { action: "reconnect" } : { action: "stop", reason: "client_error" };
  // Standard codes: 1001 going away, 1006 dropped, 1011–1014 server trouble.
  if (code === 1001 || code === 1006 || (code >= 1011 && code <= 1014)) return { action: "reconnect" };
  if (code >= 4000 && code <= 4099) return { action: "reconnect" };
  if (code >= 4100 && code <= 4199) return { action: "stop", reason: "client_error" };
  return { action: "stop", reason: "closed" };
}

/** 4003's reason is `retry_after_ms=<n>`; 2 s when it cannot be read (the default). */
function retryAfter(reason: string): number {
  const match = /retry_after_ms=(\d+)/.exec(reason);
  return match ? Number(match[1]) : 2_000;
}
