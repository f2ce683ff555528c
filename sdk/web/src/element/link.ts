/**
 * Whether a notification's `url` may be offered as a link: the gateway's own rule
 * (PROTOCOL.md §8), checked again here because the page, not the gateway, follows it.
 */

const REFUSED = new Set(["javascript:", "data:", "file:", "vbscript:", "blob:", "about:", "filesystem:", "jar:"]);

/** The URL to put in `href`, or undefined when it must not be offered. */
export function safeLink(url: string | undefined): string | undefined {
  if (!url || url.length > 2048) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined; // relative or malformed
  }
  if (REFUSED.has(parsed.protocol)) return undefined;
  if ((parsed.protocol === "http:" || parsed.protocol === "https:") && !parsed.host) return undefined;
  return parsed.href;
}
