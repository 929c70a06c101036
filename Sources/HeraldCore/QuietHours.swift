import Foundation

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// `quiet_hours:` — a silence that recurs, as Alertmanager's `time_intervals`: on these weekdays
/// (all when none are named), within these times of day, in this time zone. Each occurrence is
/// stored as an ordinary silence (id `quiet_<name>_<start>_<fingerprint>`, created by `config`) a day ahead, so
/// the planner, the release at its end, listings and expiry treat both kinds alike.
public struct QuietHours: Sendable, Equatable {
    /// A span of the day in minutes from midnight: `start` < `end` ≤ 1440 (24:00).
    public struct Span: Sendable, Equatable {
        public var start: Int
        public var end: Int
        public init(start: Int, end: Int) {
            self.start = start
            self.end = end
        }

        /// Parses `HH:MM-HH:MM` (`24:00` ends the day; a span never crosses midnight: write two).
        public init?(parsing text: String) {
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let a = Self.minute(parts[0]), let b = Self.minute(parts[1]), a < b, a < 1440 else { return nil }
            self.init(start: a, end: b)
        }

        static func minute(_ text: Substring) -> Int? {
            let hm = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
            guard hm.count == 2, hm[0].count == 2, hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]),
                  (0...24).contains(h), (0...59).contains(m), h < 24 || m == 0 else { return nil }
            return h * 60 + m
        }
    }

    /// The prefix of the ids of silences made from quiet hours.
    public static let idPrefix = "quiet_"

    public var name: String
    public var matchers: [SilenceMatcher]
    public var channels: [String]
    /// Calendar weekdays, 1 (Sunday) to 7 (Saturday); empty: every day.
    public var weekdays: Set<Int>
    public var times: [Span]
    public var timeZone: TimeZone

    public init(name: String, matchers: [SilenceMatcher] = [], channels: [String] = [], weekdays: Set<Int> = [], times: [Span],
                timeZone: TimeZone) {
        self.name = name
        self.matchers = matchers
        self.channels = channels
        self.weekdays = weekdays
        self.times = times
        self.timeZone = timeZone
    }

    /// Weekday names as configured (`mon` … `sun`, or in full) to calendar weekdays.
    public static func weekday(_ text: String) -> Int? {
        let names = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
        let t = text.lowercased()
        guard t.count >= 3, let i = names.firstIndex(where: { $0.hasPrefix(t) }) else { return nil }
        return i + 1
    }

    /// The occurrences that overlap `[from, from + horizon)`, as silences, by start.
    public func silences(from: Date, horizon: TimeInterval, createdAt: Date) -> [Silence] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let until = from.addingTimeInterval(horizon)
        var out: [Silence] = []
        var day = calendar.startOfDay(for: from)
        while day < until {
            let next = calendar.date(byAdding: .day, value: 1, to: day) ?? day.addingTimeInterval(86_400)
            if weekdays.isEmpty || weekdays.contains(calendar.component(.weekday, from: day)) {
                for span in times {
                    let start = at(span.start, of: day, next: next, calendar)
                    let end = at(span.end, of: day, next: next, calendar)
                    guard start < end, end > from, start < until else { continue }
                    out.append(Silence(id: "\(Self.idPrefix)\(name)_\(Int(start.timeIntervalSince1970))_\(fingerprint(span))", matchers: matchers,
                                       channels: channels, startsAt: start, endsAt: end, createdBy: "config",
                                       comment: "quiet hours \(name)", createdAt: createdAt))
                }
            }
            day = next
        }
        return out.sorted { $0.startsAt < $1.startsAt }
    }

    /// Eight hex digits that change when anything of an occurrence but its start changes (its end,
    /// matchers, channels, zone): a reload that changes quiet hours replaces the stored occurrences
    /// instead of keeping the old ones under the same id. FNV-1a, the same in every process.
    func fingerprint(_ span: Span) -> String {
        let text = ([name, timeZone.identifier, "\(span.start)-\(span.end)"] + matchers.map(\.description) + ["|"] + channels)
            .joined(separator: "\u{0}")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash & 0xffff_ffff, radix: 16).leftPadded(to: 8)
    }

    /// The wall-clock minute of a day in the zone (24:00: the next day's midnight; a time a
    /// daylight-saving jump skips: the first valid one after it).
    private func at(_ minute: Int, of day: Date, next: Date, _ calendar: Calendar) -> Date {
        if minute >= 1440 { return next }
        var c = calendar.dateComponents([.year, .month, .day], from: day)
        c.hour = minute / 60
        c.minute = minute % 60
        return calendar.date(from: c) ?? day.addingTimeInterval(Double(minute) * 60)
    }
}
