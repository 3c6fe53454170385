// swift-tools-version: 6.1
// Polyad Backup: encrypted, compressed, deduplicated backups that people mount.
//
// Layering (dependencies point one way, downwards):
//   C shims (CZlibShim, CCryptoShim, CSystemShim, CFuseShim, CCurlShim)
//   core: PolyadAudit (the access log), PolyadCrypto, PolyadCompression, PolyadChunker, PolyadFileSystem, PolyadFormat, PolyadStorage, PolyadConfig,
//         PolyadS3 (the S3 backend: SigV4, requests over libcurl, retries), PolyadMirror (two copies, healed)
//   repository: PolyadRepository (backup, restore, verify)
//   service: PolyadService (BackupManager, backend factory, statistics)
//   metrics: PolyadMetrics (the Prometheus text format, the node-exporter textfile)
//   mount model: PolyadMount
//   features: polyad (CLI), polyadfs (FUSE driver)
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Polyad",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "polyad", targets: ["polyad"]),
        .executable(name: "polyadfs", targets: ["polyadfs"]),
        .library(name: "PolyadService", targets: ["PolyadService"]),
        .library(name: "PolyadRepository", targets: ["PolyadRepository"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims: only what Swift cannot import directly (macros, variadics).
        .target(name: "CZlibShim", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "CCryptoShim", linkerSettings: [.linkedLibrary("crypto")]),
        .target(name: "CSystemShim"),
        .target(name: "CFuseShim", linkerSettings: [.linkedLibrary("fuse3")]),
        .target(name: "CCurlShim", linkerSettings: [.linkedLibrary("curl")]),

        // Core.
        .target(name: "PolyadCrypto", dependencies: ["CCryptoShim", "PolyadFileSystem"], swiftSettings: swiftSettings),
        .target(
            name: "PolyadCompression",
            dependencies: ["CZlibShim", "PolyadFileSystem"],
            swiftSettings: swiftSettings
        ),
        .target(name: "PolyadChunker", dependencies: ["PolyadFileSystem"], swiftSettings: swiftSettings),
        .target(name: "PolyadFileSystem", dependencies: ["CSystemShim"], swiftSettings: swiftSettings),
        .target(name: "PolyadFormat", swiftSettings: swiftSettings),
        .target(name: "PolyadStorage", dependencies: ["PolyadFileSystem"], swiftSettings: swiftSettings),
        .target(
            name: "PolyadS3",
            dependencies: ["CCurlShim", "PolyadCrypto", "PolyadFormat", "PolyadStorage"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PolyadMirror",
            dependencies: ["PolyadCrypto", "PolyadFormat", "PolyadStorage"],
            swiftSettings: swiftSettings
        ),
        // The access log: JSON lines an auditor reads, written by one thread (the mount and the CLI).
        .target(name: "PolyadAudit", dependencies: ["PolyadFileSystem"], swiftSettings: swiftSettings),
        .target(
            name: "PolyadConfig",
            dependencies: ["PolyadFileSystem", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),

        // Repository: the library API.
        .target(
            name: "PolyadRepository",
            dependencies: [
                "PolyadCrypto", "PolyadCompression", "PolyadChunker", "PolyadFileSystem", "PolyadFormat",
                "PolyadStorage",
            ],
            swiftSettings: swiftSettings
        ),

        // Service: BackupManager (the library API), the backend factory, statistics and local state.
        .target(
            name: "PolyadService",
            dependencies: [
                "PolyadRepository", "PolyadConfig", "PolyadStorage", "PolyadS3", "PolyadMirror", "PolyadFormat",
                "PolyadFileSystem",
            ],
            swiftSettings: swiftSettings
        ),

        // Metrics: the store's figures in the Prometheus text format, one registry (swift-prometheus).
        .target(
            name: "PolyadMetrics",
            dependencies: [
                "PolyadService", "PolyadFileSystem", .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),

        // The mount's filesystem model (no FUSE types: testable on its own).
        .target(
            name: "PolyadMount",
            dependencies: [
                "PolyadService", "PolyadRepository", "PolyadFormat", "PolyadCrypto",
                "PolyadFileSystem", "PolyadStorage", "PolyadConfig", "PolyadAudit", "PolyadMetrics",
            ],
            swiftSettings: swiftSettings
        ),

        // Features.
        .executableTarget(
            name: "polyadfs",
            dependencies: [
                "PolyadMount", "PolyadService", "PolyadRepository", "PolyadConfig", "PolyadMirror", "PolyadAudit",
                "CFuseShim", "CSystemShim",
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "polyad",
            dependencies: [
                "PolyadService", "PolyadRepository", "PolyadConfig", "PolyadFileSystem", "PolyadMirror", "PolyadS3",
                "PolyadStorage", "PolyadAudit", "PolyadMetrics", "CSystemShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        // Tests: one target per module, plus the CLI integration tests that run the built binary.
        // Test data shared by the test targets.
        .target(
            name: "PolyadTestSupport",
            dependencies: ["PolyadFileSystem", "PolyadS3"],
            path: "Tests/PolyadTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadCryptoTests",
            dependencies: ["PolyadCrypto", "PolyadFormat"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadCompressionTests",
            dependencies: ["PolyadCompression", "PolyadTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadChunkerTests",
            dependencies: ["PolyadChunker", "PolyadTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadFileSystemTests",
            dependencies: ["PolyadFileSystem", "PolyadTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadAuditTests",
            dependencies: ["PolyadAudit", "PolyadFileSystem", "PolyadTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "PolyadFormatTests", dependencies: ["PolyadFormat"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PolyadStorageTests",
            dependencies: [
                "PolyadStorage", "PolyadS3", "PolyadMirror", "PolyadCrypto", "PolyadFormat", "PolyadTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadS3Tests",
            dependencies: ["PolyadS3", "PolyadCrypto", "PolyadFormat", "PolyadStorage", "PolyadTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadConfigTests",
            dependencies: ["PolyadConfig", "PolyadFileSystem", "PolyadTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadRepositoryTests",
            dependencies: ["PolyadService", "PolyadRepository", "PolyadConfig", "PolyadTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadMountTests",
            dependencies: [
                "PolyadMount", "PolyadService", "PolyadRepository", "PolyadConfig",
                "PolyadFormat", "PolyadFileSystem", "PolyadAudit", "PolyadTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadMetricsTests",
            dependencies: ["PolyadMetrics", "PolyadService", "PolyadFormat"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolyadCLITests",
            dependencies: [
                "CSystemShim", "PolyadCrypto", "PolyadFormat", "PolyadFileSystem", "PolyadS3", "PolyadStorage",
                "PolyadTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
