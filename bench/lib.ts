/**
 * The library as its users run it: the compiled build in `dist/` (`npm run build:ts`; `npm run
 * bench` runs it first), not the TypeScript sources through tsx. tsx transforms with esbuild's
 * keepNames, which wraps every named closure in a `defineProperty` call each time it is created:
 * the service creates several per op, and measured through tsx it ran about a fifth slower.
 */
import * as NFS from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

export { Uring, type UringConfigInput, UringFileSystem } from "../dist/src/index.js"
export { makeOperations } from "../dist/src/internal/uring.js"
export { type OnResult, RingClient, type Submitted } from "../dist/src/internal/RingClient.js"
export type { NativeRing } from "../dist/src/internal/native.js"
export { RegisteredFile } from "../dist/src/services/Handles.js"
export { STATX_ALL_MASK } from "../dist/src/services/Metadata.js"

const root = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..")

/** The newest modification time under `dir`, in ms. */
const newest = (dir: string): number =>
  NFS.readdirSync(dir, { withFileTypes: true }).reduce((latest, entry) => {
    const path = Path.join(dir, entry.name)
    return Math.max(latest, entry.isDirectory() ? newest(path) : NFS.statSync(path).mtimeMs)
  }, 0)

// A stale build would measure other code than the sources say (checked once per run, by run.ts).
if (
  process.env.BENCH_DIST_CHECKED !== "1" &&
  newest(Path.join(root, "src")) > NFS.statSync(Path.join(root, "dist", "src", "index.js")).mtimeMs
) {
  throw new Error("dist/ is older than src/: run `npm run build:ts` (npm run bench does) before measuring")
}
