/**
 * `Metadata` (decoded statx) as the platform's `File.Info`, with the values Node's `fs.Stats` would give.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Option } from "effect"
import type { Metadata } from "../../services/Metadata.js"

/** glibc's `makedev`, which libuv uses to build `st_dev` and `st_rdev` from statx's major and minor. @internal */
export const makedev = (major: number, minor: number): number => {
  const ma = BigInt(major >>> 0)
  const mi = BigInt(minor >>> 0)
  return Number(((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn))
}

// Node builds each Date as `new Date(Math.round(sec * 1e3 + nsec / 1e6))`; doing the same gives the same Date.
const nodeDate = (nanos: bigint): Date => {
  const sec = nanos / 1_000_000_000n
  let nsec = nanos % 1_000_000_000n
  let s = sec
  if (nsec < 0n) {
    nsec += 1_000_000_000n
    s -= 1n
  }
  return new Date(Math.round(Number(s) * 1e3 + Number(nsec) / 1e6))
}

/** The platform's file info from statx metadata. @internal */
export const toInfo = (meta: Metadata): FileSystem.File.Info => ({
  type: meta.type,
  mtime: Option.some(nodeDate(meta.mtimeNs)),
  atime: Option.some(nodeDate(meta.atimeNs)),
  // libuv copies stx_btime even when the file system leaves it out (zeroes), so Node always has a birthtime.
  birthtime: Option.some(nodeDate(Option.getOrElse(meta.birthtimeNs, () => 0n))),
  dev: makedev(meta.devMajor, meta.devMinor),
  rdev: Option.some(makedev(meta.rdevMajor, meta.rdevMinor)),
  ino: Option.some(Number(meta.ino)),
  mode: meta.mode,
  nlink: Option.some(meta.nlink),
  uid: Option.some(meta.uid),
  gid: Option.some(meta.gid),
  size: FileSystem.Size(meta.size),
  blksize: Option.some(FileSystem.Size(meta.blksize)),
  blocks: Option.some(Number(meta.blocks))
})
