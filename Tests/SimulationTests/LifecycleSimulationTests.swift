import Foundation
import Testing
@testable import HeraldPostgres

/// The lifecycle simulation over many seeds, on each store. CI runs a bounded number; a longer run:
///
///     HERALD_SIM_SEEDS=2000 HERALD_SIM_STEPS=600 swift test --filter LifecycleSimulationTests
///
/// and one seed again, exactly: `HERALD_SIM_SEED=1234 swift test --filter LifecycleSimulationTests`.
@Suite struct LifecycleSimulationTests {
    static let environment = ProcessInfo.processInfo.environment
    static let steps = environment["HERALD_SIM_STEPS"].flatMap(Int.init) ?? 250
    static func seeds(_ defaultCount: Int) -> [UInt64] {
        if let one = environment["HERALD_SIM_SEED"].flatMap(UInt64.init) { return [one] }
        let count = environment["HERALD_SIM_SEEDS"].flatMap(Int.init) ?? defaultCount
        let first = environment["HERALD_SIM_FIRST_SEED"].flatMap(UInt64.init) ?? 1
        return (0..<UInt64(count)).map { first + $0 }
    }
    static let postgresURL = environment["HERALD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    func run(_ seed: UInt64, _ backend: LifecycleSimulation.Backend) async throws {
        let sim = LifecycleSimulation(seed: seed, backend: backend, steps: Self.steps)
        let problems = try await sim.run()
        if Self.environment["HERALD_SIM_VERBOSE"] != nil { print("seed \(seed): \(sim.stats)") }
        #expect(problems.isEmpty, """
            seed \(seed) on \(backend): \(problems.count) problem(s)
            \(problems.prefix(10).joined(separator: "\n"))
            last steps:
            \(sim.trace.joined(separator: "\n"))
            replay: HERALD_SIM_SEED=\(seed) HERALD_SIM_STEPS=\(Self.steps) swift test --filter LifecycleSimulationTests
            """)
    }

    @Test func sqlite() async throws {
        for seed in Self.seeds(60) { try await run(seed, .sqlite) }
    }

    @Test(.enabled(if: postgresURL != nil, "set HERALD_TEST_POSTGRES_URL (scripts/pg-start) to run against PostgreSQL"))
    func postgres() async throws {
        let server = try #require(Self.postgresURL)
        for seed in Self.seeds(20) {
            let name = "herald_sim_\(seed)_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8).lowercased()
            let url = try await PostgresStore.createDatabase(serverURL: server, name: name)
            try await run(seed, .postgres(url: url))
        }
    }
}
