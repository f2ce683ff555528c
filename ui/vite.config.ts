// Vite build of the panel (Tauri's frontendDist is ui/dist) and the vitest setup.
/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  // Relative asset URLs: the webview loads dist/ through Tauri's asset protocol.
  base: './',
  plugins: [svelte()],
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  preview: { port: 4173, strictPort: true },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Strict CSP (script-src 'self'): no inline preload polyfill.
    modulePreload: { polyfill: false },
    // Keep every asset a file: nothing inlined as a data: URL script or style.
    assetsInlineLimit: 0,
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
