// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "herald",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "herald", targets: ["herald"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "HeraldCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldStore",
            dependencies: ["HeraldCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldSQLite",
            dependencies: [
                "HeraldCore", "HeraldStore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldPostgres",
            dependencies: [
                "HeraldCore", "HeraldStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldTransport",
            dependencies: ["CCurl"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldChannels",
            dependencies: [
                "HeraldCore", "HeraldTransport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldDispatcher",
            dependencies: [
                "HeraldCore", "HeraldStore", "HeraldChannels",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // openapi.json is in the repository once: the plugin embeds it into HeraldServer at build time.
        .executableTarget(name: "openapi-embed"),
        .plugin(name: "EmbedOpenAPI", capability: .buildTool(), dependencies: ["openapi-embed"]),
        .target(
            name: "HeraldServer",
            dependencies: [
                "HeraldCore", "HeraldStore", "HeraldSQLite", "HeraldPostgres", "HeraldTransport", "HeraldChannels", "HeraldDispatcher",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["EmbedOpenAPI"]
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "HeraldCore", "HeraldStore", "HeraldSQLite", "HeraldPostgres", "HeraldTransport", "HeraldChannels", "HeraldDispatcher", "HeraldServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // A benchmark program (prints figures): the embedded store's CPU per delivery, no network.
        .executableTarget(
            name: "herald-store-bench",
            dependencies: ["HeraldCore", "HeraldStore", "HeraldSQLite"],
            path: "Benchmarks/StoreBench",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "HeraldCoreTests", dependencies: ["HeraldCore"], swiftSettings: swiftSettings),
        .testTarget(name: "HeraldStoreTests", dependencies: ["HeraldStore", "HeraldSQLite", "HeraldPostgres"], swiftSettings: swiftSettings),
        .testTarget(name: "HeraldTransportTests", dependencies: ["HeraldTransport", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "HeraldChannelsTests",
            dependencies: ["HeraldChannels", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ChatChannelTests", dependencies: ["HeraldChannels", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "HeraldDispatcherTests", dependencies: ["HeraldDispatcher", "HeraldSQLite", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "HeraldServerTests",
            dependencies: ["HeraldServer", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SimulationTests",
            dependencies: ["HeraldCore", "HeraldStore", "HeraldSQLite", "HeraldPostgres", "HeraldChannels", "HeraldTransport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "HeraldCore", "HeraldTransport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
    ]
)
