// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "rgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rgate", targets: ["rgate"]),
        .executable(name: "rgate-worker", targets: ["rgate-worker"]),
        .library(name: "RgateEngine", targets: ["RgateEngine"]),
        .library(name: "RgateModel", targets: ["RgateModel"]),
        .library(name: "RgateText", targets: ["RgateText"]),
        .library(name: "RgateQAP1", targets: ["RgateQAP1"]),
        .library(name: "RgateClient", targets: ["RgateClient"]),
        .library(name: "RgateBridge", targets: ["RgateBridge"]),
        .library(name: "RgateJSON", targets: ["RgateJSON"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // libR headers and link flags, from Debian's libR.pc.
        .systemLibrary(name: "CLibR", pkgConfig: "libR", providers: [.apt(["r-base-core", "r-base-dev"])]),
        // The only C code that touches R: start-up, console callbacks, guarded eval, accessors.
        .target(name: "CRShim", dependencies: ["CLibR"]),
        // POSIX helpers Swift cannot express: SCM_RIGHTS, prctl, rlimits.
        .target(name: "CRgateSystem", linkerSettings: [.linkedLibrary("crypt")]),
        // The Swift value model of R objects; pure Swift, no libR.
        .target(name: "RgateModel", swiftSettings: swiftSettings),
        // "rjson": R values to and from jsonlite::serializeJSON's layout, losslessly; pure Swift, no libR.
        .target(name: "RgateJSON", dependencies: ["RgateModel"], swiftSettings: swiftSettings),
        // Embedded R: the only importer of CRShim; SEXP never leaves it.
        .target(name: "RgateEngine", dependencies: ["CRShim", "RgateModel"], swiftSettings: swiftSettings),
        // The seed's text protocol: framing and encodings; pure Swift on NIOCore.
        .target(name: "RgateText", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        // Rserve's QAP1: messages, parameters and the SEXP encoding; pure Swift on NIOCore.
        .target(
            name: "RgateQAP1",
            dependencies: ["RgateModel", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // The data plane between the supervisor and a session process (requests, replies, values
        // encoded in the session) and the session API's contract; pure Swift on NIOCore.
        .target(name: "RgateBridge", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        // Authentication: Rserve password files (plain, $md5, $sha1, unix crypt).
        .target(
            name: "RgateAuth",
            dependencies: [
                "CRgateSystem", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Roles, the caller grammar and the security policy; pure Swift, no libR.
        .target(name: "RgatePolicy", dependencies: ["RgateModel"], swiftSettings: swiftSettings),
        // Messages between the supervisor, the zygote and session processes (unix sockets, fd passing).
        .target(name: "RgateIPC", dependencies: ["CRgateSystem"], swiftSettings: swiftSettings),
        // The worker process: a single-threaded zygote with R that forks session processes.
        .target(
            name: "RgateWorker",
            dependencies: [
                "RgateEngine", "RgateText", "RgateQAP1", "RgateBridge", "RgateJSON", "RgateIPC", "RgatePolicy", "CRgateSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The supervisor: listeners, worker pool, sessions, lifecycle.
        .target(
            name: "RgateServer",
            dependencies: [
                "CRgateSystem", "RgateIPC", "RgateText", "RgateQAP1", "RgateBridge", "RgateAuth", "RgatePolicy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Client library (async/await on NIO).
        .target(
            name: "RgateClient",
            dependencies: [
                "RgateText", "RgateQAP1", "RgateModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "rgate",
            dependencies: [
                "RgateServer", "RgateClient", "RgateIPC", "RgateAuth", "CRgateSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The worker process (zygote and sessions): the only executable that links R.
        .executableTarget(name: "rgate-worker", dependencies: ["RgateWorker", "RgateIPC"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RgateQAP1Tests",
            dependencies: [
                "RgateQAP1", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RgateBridgeTests",
            dependencies: [
                "RgateBridge", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "RgatePolicyTests", dependencies: ["RgatePolicy"], swiftSettings: swiftSettings),
        .testTarget(name: "RgateAuthTests", dependencies: ["RgateAuth"], swiftSettings: swiftSettings),
        .testTarget(name: "RgateIPCTests", dependencies: ["RgateIPC"], swiftSettings: swiftSettings),
        .testTarget(name: "RgateModelTests", dependencies: ["RgateModel"], swiftSettings: swiftSettings),
        .testTarget(name: "RgateJSONTests", dependencies: ["RgateJSON", "RgateModel"], swiftSettings: swiftSettings),
        // The one in-process R that test targets share (R starts once per process).
        .target(name: "RgateTestSupport", dependencies: ["RgateEngine"], path: "Tests/RgateTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "RgateEngineTests", dependencies: ["RgateEngine", "RgateTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RgateWorkerTests",
            dependencies: [
                "RgateWorker", "RgateBridge", "RgateEngine", "RgateIPC", "RgatePolicy", "RgateQAP1", "RgateModel", "RgateTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RgateTextTests",
            dependencies: [
                "RgateText", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RgateServerTests",
            dependencies: ["RgateServer", "RgateClient", "RgateText", "RgateBridge", "RgateQAP1", "RgateModel", "RgateIPC", "RgatePolicy", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RgateClientTests",
            dependencies: [
                "RgateClient", "RgateQAP1", "RgateText",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
