// Swift 6.0's libswiftObservation.so on Linux calls swift::threading::fatal without
// defining it, so a binary that uses @Observable does not link there
// (swiftlang/swift#75670, fixed in Swift 6.2). The test binary defines it. Apple
// platforms, where the app runs, are not affected.

#if os(Linux)
@_cdecl("_ZN5swift9threading5fatalEPKcz")
func swiftThreadingFatal() -> Never {
    fatalError("swift::threading::fatal (from the Observation runtime)")
}
#endif
