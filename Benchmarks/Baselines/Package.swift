// swift-tools-version:6.0
// In-process baselines for the benchmark suite: the engine's cost per call with no network.
// Its own package (and its own .build) so that the root package stays free of benchmark code.
// Build and run: cd Benchmarks/Baselines && swift build -c release && .build/release/baselines
import PackageDescription
import Foundation

// A path dependency's identity is the last component of its path: the name of the clone's
// directory (e.g. "main" or "rgate"), which this manifest cannot know in advance.
let rootPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../..").standardizedFileURL
let rootIdentity = rootPath.lastPathComponent.lowercased()

let package = Package(
    name: "baselines",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "baselines",
            dependencies: [.product(name: "RgateEngine", package: rootIdentity)]
        ),
    ]
)
