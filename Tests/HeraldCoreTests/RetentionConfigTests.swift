import Foundation
import Testing
@testable import HeraldCore

/// `retention:` — defaults, durations, `forever`, and mistakes reported with their position.
@Suite struct RetentionConfigTests {
    func errors(_ yaml: String) -> [String] {
        do {
            _ = try ConfigLoader.load(yaml: yaml, file: "h.yaml", environment: [:])
            return []
        } catch let errors as ConfigErrors {
            return errors.errors.map(\.description)
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test func defaultsAreTheIssuesPeriods() throws {
        let config = try ConfigLoader.load(yaml: "channels: {c: {type: console}}", file: "h.yaml", environment: [:])
        let r = config.retention
        #expect(r.deliveries == .seconds(90 * 86_400))
        #expect(r.idempotency == .seconds(48 * 3_600))
        #expect(r.statusPosts == .seconds(365 * 86_400))
        #expect(r.incidents == .seconds(365 * 86_400))
        #expect(r.interval == .seconds(600) && r.batch == 500 && r.pause == .milliseconds(20))
    }

    @Test func periodsAndForever() throws {
        let config = try ConfigLoader.load(yaml: """
            retention:
              deliveries: 30d
              idempotency: 7d
              status_posts: forever
              incidents: Forever
              interval: 1m
              batch: 200
              pause: 0ms
            channels: {c: {type: console}}
            """, file: "h.yaml", environment: [:])
        let r = config.retention
        #expect(r.deliveries == .seconds(30 * 86_400) && r.idempotency == .seconds(7 * 86_400))
        #expect(r.statusPosts == nil && r.incidents == nil)
        #expect(r.interval == .seconds(60) && r.batch == 200 && r.pause == .zero)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let cut = r.cutoffs(now: now)
        #expect(cut.deliveries == now.addingTimeInterval(-30 * 86_400) && cut.statusPosts == nil && cut.incidents == nil)
    }

    @Test func mistakesAreReportedWhereTheyAre() {
        let lines = errors("""
            retention:
              deliveries: 30
              idempotency: 10s
              incidents: never
              batch: 0
              keep: 1d
            """)
        #expect(lines.contains { $0.hasPrefix("h.yaml:2:15: retention.deliveries: expected a duration") }, "\(lines)")
        #expect(lines.contains("h.yaml:3:16: retention.idempotency: must be at least 1m (or forever)"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("h.yaml:4:14: retention.incidents: expected a duration") }, "\(lines)")
        #expect(lines.contains("h.yaml:5:10: retention.batch: must be from 1 to 100000"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("h.yaml:6:3: retention.keep: unknown key") }, "\(lines)")
    }
}
