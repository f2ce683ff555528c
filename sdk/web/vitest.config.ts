import { defineConfig } from "vitest/config";

// Unit tests run in Node with fakes (socket, fetch, timers, IndexedDB); the real
// browser, socket and gateway are exercised by tests/src/web_sdk.rs in Chromium.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
