/**
 * Builds an error without capturing a JavaScript stack. A kernel error is made where its completion
 * is handled, so its stack would hold only the ring's dispatch and the fiber run loop (the fiber's
 * spans say where the op came from), and capturing it was most of an error's cost: about 5 of 8 µs
 * here, paid per op by a stat storm over missing paths.
 *
 * @internal
 */
export const withoutStack = <A>(make: () => A): A => {
  const limit = Error.stackTraceLimit
  try {
    Error.stackTraceLimit = 0
  } catch {
    // A frozen `Error` (a hardened realm) keeps its limit.
    return make()
  }
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}
