/**
 * `GET /v1/history`, the one HTTP call the client makes: a page of a stream's
 * retained notifications with the caller's read flags, to rebuild a stream the
 * gateway could not resume (PROTOCOL.md §2, §7).
 */

import type { ErrorBody, HistoryResponse } from "./protocol/index.js";

/** The largest page the gateway serves. */
export const HISTORY_PAGE = 500;

/** A refused or failed history request, with the gateway's explanation when it gave one. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export interface HistoryQuery {
  stream: string;
  after: number;
  unread: boolean;
}

/** Fetches one page. Network failures and non-2xx answers throw {@link HttpError} (status 0 = no answer). */
export async function fetchHistory(fetchImpl: typeof fetch, base: string, token: string, q: HistoryQuery): Promise<HistoryResponse> {
  const params = new URLSearchParams({ stream: q.stream, after: String(q.after), limit: String(HISTORY_PAGE) });
  if (q.unread) params.set("unread", "true");
  let response: Response;
  try {
    response = await fetchImpl(`${base}/v1/history?${params}`, { headers: { Authorization: `Bearer ${token}` } });
  } catch (err) {
    throw new HttpError(0, undefined, `cannot reach the gateway for the history of ${q.stream}: ${String(err)}`);
  }
  if (!response.ok) {
    // Tocsin's handlers answer an ErrorBody; the HTTP layer (404/405) an empty body.
    const body = (await response.json().catch(() => undefined)) as ErrorBody | undefined;
    const detail = body?.message ?? response.statusText;
    throw new HttpError(response.status, body, `history of ${q.stream}: HTTP ${response.status}: ${detail}`);
  }
  return (await response.json()) as HistoryResponse;
}
