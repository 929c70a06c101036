import Foundation
import HeraldCore
import Testing

/// Quiet hours: recurring silences in a time zone, as Alertmanager's time_intervals.
struct QuietHoursTests {
    func utc(_ text: String) -> Date { RFC3339.parse(text)! }

    @Test func spansAreWithinOneDay() {
        #expect(QuietHours.Span(parsing: "22:00-24:00") == .init(start: 1320, end: 1440))
        #expect(QuietHours.Span(parsing: "00:00-07:30") == .init(start: 0, end: 450))
        for bad in ["22:00-07:00", "07:00-07:00", "7:00-08:00", "24:00-24:00", "23:60-24:00", "24:30-24:00", "09:00", "a-b", "09:00-24:01"] {
            #expect(QuietHours.Span(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func weeknightsInBerlinAcrossMidnight() throws {
        let nights = QuietHours(name: "nights", matchers: [try SilenceMatcher(parsing: "severity!=critical")], channels: ["pager"],
                                weekdays: [2, 3, 4, 5, 6], times: [.init(start: 1320, end: 1440), .init(start: 0, end: 420)],
                                timeZone: TimeZone(identifier: "Europe/Berlin")!)
        // Friday 2026-11-27, 12:00 UTC (13:00 in Berlin), until Tuesday 00:00 UTC (01:00 in Berlin).
        let from = utc("2026-11-27T12:00:00Z")
        let occurrences = nights.silences(from: from, horizon: 3.5 * 86_400, createdAt: from)
        #expect(occurrences.map { "\(RFC3339.format($0.startsAt))–\(RFC3339.format($0.endsAt))" } == [
            "2026-11-27T21:00:00.000Z–2026-11-27T23:00:00.000Z", // Friday 22:00–24:00 CET
            "2026-11-29T23:00:00.000Z–2026-11-30T06:00:00.000Z", // Monday 00:00–07:00 (Saturday and Sunday are not listed)
            "2026-11-30T21:00:00.000Z–2026-11-30T23:00:00.000Z", // Monday 22:00–24:00
            "2026-11-30T23:00:00.000Z–2026-12-01T06:00:00.000Z", // Tuesday 00:00–07:00 (begins before the horizon ends)
        ])
        #expect(occurrences[0].id.hasPrefix("quiet_nights_\(Int(utc("2026-11-27T21:00:00Z").timeIntervalSince1970))_"))
        // Changed matchers (or channels, end, zone): other ids, so a reload replaces what is stored.
        var narrower = nights
        narrower.matchers = [try SilenceMatcher(parsing: "severity=info")]
        let changed = narrower.silences(from: from, horizon: 3.5 * 86_400, createdAt: from)
        #expect(changed.count == occurrences.count && Set(changed.map(\.id)).isDisjoint(with: occurrences.map(\.id)))
        #expect(occurrences.allSatisfy { $0.createdBy == "config" && $0.channels == ["pager"] && $0.matchers.count == 1 })
        // The same configuration, the same ids: several nodes and restarts store each once.
        #expect(nights.silences(from: from.addingTimeInterval(60), horizon: 3.5 * 86_400, createdAt: from).map(\.id)
                == occurrences.map(\.id))
    }

    @Test func aSpanOverTheSpringForwardJumpIsAnHourShorter() {
        let q = QuietHours(name: "n", channels: ["pager"], times: [.init(start: 60, end: 240)], timeZone: TimeZone(identifier: "Europe/Berlin")!)
        let day = q.silences(from: utc("2026-03-28T23:30:00Z"), horizon: 3600 * 6, createdAt: Date())
        #expect(day.count == 1)
        #expect(day.first.map { $0.endsAt.timeIntervalSince($0.startsAt) } == 7200)
    }

    @Test func weekdayNames() {
        #expect(["mon", "Tue", "wednesday", "THU", "fri", "sat", "sun"].compactMap(QuietHours.weekday) == [2, 3, 4, 5, 6, 7, 1])
        #expect(QuietHours.weekday("mo") == nil && QuietHours.weekday("funday") == nil)
    }

    @Test func configErrorsNameTheKeyPath() {
        let yaml = """
            channels:
              pager: {type: console}
            quiet_hours:
              - name: nights
                time_zone: Mars/Olympus
                weekdays: [mon, funday]
                times: ["22:00-07:00"]
                channels: [pager, nope]
              - name: nights
                times: ["09:00-17:00"]
              - name: ok
                times: ["09:00-17:00"]
                matchers: ["team"]
              - name: everything
                times: ["09:00-17:00"]
                matchers: []
            routes:
              - channels: [pager]
            """
        do {
            _ = try ConfigLoader.load(yaml: yaml, file: "q.yaml")
            Issue.record("loaded a broken configuration")
        } catch let errors as ConfigErrors {
            let found = errors.errors.map { "\($0.line):\($0.keyPath)" }
            #expect(Set(found) == ["5:quiet_hours[0].time_zone", "6:quiet_hours[0].weekdays[1]", "7:quiet_hours[0].times[0]",
                                   "8:quiet_hours[0].channels[1]", "9:quiet_hours[1]", "9:quiet_hours[1].name",
                                   "13:quiet_hours[2].matchers[0]", "14:quiet_hours[3]"], "\(errors)")
            #expect(found.count == 8)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aGoodConfigurationLoads() throws {
        let config = try ConfigLoader.load(yaml: """
            channels:
              pager: {type: console}
            quiet_hours:
              - {name: nights, time_zone: Europe/Berlin, weekdays: [mon, tue], times: ["22:00-24:00", "00:00-07:00"],
                 matchers: ['severity=~"minor|info"'], channels: [pager]}
            routes:
              - channels: [pager]
            """, file: "q.yaml")
        #expect(config.quietHours.count == 1)
        #expect(config.quietHours[0].weekdays == [2, 3] && config.quietHours[0].times.count == 2)
        #expect(config.quietHours[0].matchers.map(\.description) == ["severity=~\"minor|info\""])
    }
}
