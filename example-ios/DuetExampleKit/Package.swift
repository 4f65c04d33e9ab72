// swift-tools-version:6.0
//
// What the sample app does, apart from its SwiftUI views and the iPhone's camera and
// audio: the call's state machine (sign in, home, outgoing, incoming, in call, ended),
// the messages shown for errors, stats formatting, and remembering the server and uid.
// It builds and is tested on Linux too (scripts/test-swift), against a real `duet serve`.
//
// Duet comes in by local path, as an app adds it with Swift Package Manager.

import PackageDescription

let package = Package(
    name: "DuetExampleKit",
    // @Observable needs iOS 17; the Duet package itself supports iOS 13.
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "DuetExampleKit", targets: ["DuetExampleKit"]),
    ],
    dependencies: [
        .package(path: "../../swift"),
    ],
    targets: [
        .target(
            name: "DuetExampleKit",
            dependencies: [
                .product(name: "Duet", package: "swift"),
                // A call answered on CallKit's screen shown in the app (SystemCallView).
                .product(name: "DuetCallKit", package: "swift"),
            ]
        ),
        .testTarget(
            name: "DuetExampleKitTests",
            dependencies: [
                "DuetExampleKit", .product(name: "DuetTestSupport", package: "swift"),
                .product(name: "DuetCallKit", package: "swift"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
