import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Rings are per-process resources and some suites mount tmpfs or fork children: keep files isolated in forks.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
