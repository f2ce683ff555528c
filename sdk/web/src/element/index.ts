/**
 * `@tocsin/web/element`: registers `<tocsin-bell>` (importing this module defines it,
 * once). Pages set the element's `client` to a started `TocsinClient`.
 */

import { TocsinBell } from "./bell.js";

export { TocsinBell };

if (typeof customElements !== "undefined" && !customElements.get("tocsin-bell")) {
  customElements.define("tocsin-bell", TocsinBell);
}

declare global {
  interface HTMLElementTagNameMap {
    "tocsin-bell": TocsinBell;
  }
}
