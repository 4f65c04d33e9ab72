// swift-tools-version:5.9
//
// Duet for Swift: `import Duet`.
//
// `Duet` is the generated API (Sources/Duet/Duet.swift, from scripts/generate-bindings) plus
// a thin hand-written layer; `DuetFFI` is the C module it calls, backed by the Rust engine
// (the `duet-ffi` crate):
//
// - On Apple platforms, when `DuetFFI.xcframework` sits beside this file (made by
//   scripts/build-xcframework), `DuetFFI` is that binary target: the engine is linked
//   statically into the app and nothing else is needed. A released package uses
//   `.binaryTarget(name: "DuetFFI", url: ..., checksum: ...)` instead (see the README).
// - Otherwise (Linux, and the tests) `DuetFFI` is the generated header and module map; the
//   module map links `duet_ffi`, so whoever builds says where libduet_ffi is:
//     swift test -Xlinker -L<dir> -Xlinker -rpath -Xlinker <dir>
//   scripts/test-swift does this with cargo's target/debug. No unsafe flags here, so the
//   package can be a dependency of other packages.

import Foundation
import PackageDescription

var ffi: Target = .target(name: "DuetFFI", path: "Sources/DuetFFI")
#if canImport(Darwin)
if FileManager.default.fileExists(atPath: Context.packageDirectory + "/DuetFFI.xcframework") {
    ffi = .binaryTarget(name: "DuetFFI", path: "DuetFFI.xcframework")
}
#endif

let package = Package(
    name: "Duet",
    platforms: [.iOS(.v13), .macOS(.v10_15)],
    products: [
        .library(name: "Duet", targets: ["Duet"]),
        // For iOS apps: VoIP pushes (PushKit) and the system call screen (CallKit). Its
        // logic is platform-free and tested on Linux; the CallKit adapter builds on iOS only.
        .library(name: "DuetCallKit", targets: ["DuetCallKit"]),
        // A real `duet serve` for tests (macOS and Linux): Duet's, the sample app's, yours.
        .library(name: "DuetTestSupport", targets: ["DuetTestSupport"]),
    ],
    targets: [
        ffi,
        .target(
            name: "Duet",
            dependencies: ["DuetFFI"],
            path: "Sources/Duet",
            linkerSettings: [
                // Used by the iOS capture and playout shims (compiled only for iOS).
                .linkedFramework("AVFoundation", .when(platforms: [.iOS])),
                .linkedFramework("AudioToolbox", .when(platforms: [.iOS])),
                .linkedFramework("CoreMedia", .when(platforms: [.iOS])),
                .linkedFramework("CoreVideo", .when(platforms: [.iOS])),
                .linkedFramework("UIKit", .when(platforms: [.iOS])),
                // The hardware H.264 codecs (iOS/VideoToolboxCodecs.swift).
                .linkedFramework("VideoToolbox", .when(platforms: [.iOS, .macOS])),
                // What the statically linked engine needs from the system: OpenH264 is C++
                // (built in on desktop builds; the XCFramework leaves it out, and the system's
                // libc++ costs an app nothing), random numbers come from Security
                // (`SecRandomCopyBytes`).
                // scripts/build-xcframework prints the full list rustc asks for.
                .linkedLibrary("c++", .when(platforms: [.iOS, .macOS])),
                .linkedFramework("Security", .when(platforms: [.iOS, .macOS])),
            ]
        ),
        .target(
            name: "DuetCallKit",
            dependencies: ["Duet"],
            path: "Sources/DuetCallKit",
            linkerSettings: [
                .linkedFramework("CallKit", .when(platforms: [.iOS])),
                .linkedFramework("PushKit", .when(platforms: [.iOS])),
            ]
        ),
        .target(name: "DuetTestSupport", dependencies: ["Duet"], path: "Sources/DuetTestSupport"),
        .testTarget(
            name: "DuetTests", dependencies: ["Duet", "DuetTestSupport"], path: "Tests/DuetTests"),
        .testTarget(
            name: "DuetCallKitTests", dependencies: ["DuetCallKit", "DuetTestSupport"],
            path: "Tests/DuetCallKitTests"),
    ],
    swiftLanguageVersions: [.v5]
)
