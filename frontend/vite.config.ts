import react from '@vitejs/plugin-react'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  plugins: [react()],
  // Relative asset paths: the same dist/ works at any URL prefix (backend at /, Nginx html folder).
  base: './',
  server: { host: '127.0.0.1', port: 5173 },
  // One bundle of ~250 kB gzipped, most of it KaTeX and the markdown parser (highlight.js lives in
  // the highlighting worker's own file, pdf.js in files loaded when a PDF is attached); served
  // locally, so not split further.
  build: { chunkSizeWarningLimit: 850 },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
    setupFiles: ['src/test-setup.ts'],
  },
})
