import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The build goes to ../ui/dist, which the client function embeds (go:embed ui). Asset names
// carry a content hash, so the function serves them as immutable.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../ui/dist",
    emptyOutDir: true,
  },
  // `npm run dev` serves the UI with hot reload and sends the API to `make run`'s ingress.
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/config.json": "http://127.0.0.1:8080",
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
  },
});
