import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics every Prometheus client exposes (the names, types and meanings
/// of client_golang's process collector), read from /proc at each scrape: CPU time, resident and
/// virtual memory, open and maximum file descriptors, start time. On a system without /proc the
/// families are left out.
enum ProcessMetrics {
    struct Sample: Equatable {
        var cpuSeconds: Double
        var residentBytes: Double
        var virtualBytes: Double
        var openFDs: Int
        var maxFDs: Int?
        var startTimeSeconds: Double
    }

    static func render(into buffer: inout [UInt8]) {
        guard let s = sample() else { return }
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", format(s.cpuSeconds))
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", format(s.residentBytes))
        family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", format(s.virtualBytes))
        family("process_open_fds", "gauge", "Number of open file descriptors.", "\(s.openFDs)")
        if let max = s.maxFDs {
            family("process_max_fds", "gauge", "Maximum number of open file descriptors.", "\(max)")
        }
        family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", format(s.startTimeSeconds))
        buffer.append(contentsOf: text.utf8)
    }

    /// Integral values without an exponent (Prometheus reads either; people read this).
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// This process, now; nil without /proc.
    static func sample() -> Sample? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": field 3 (state) is index 0, so field N is index N - 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ n: Int) -> Double? { fields.count > n - 3 ? Double(fields[n - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24)
        else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var limit = rlimit()
        let maxFDs: Int? = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur != rlim_t.max
            ? Int(limit.rlim_cur) : nil
        return Sample(cpuSeconds: (utime + stime) / ticks, residentBytes: rss * page, virtualBytes: vsize,
                      openFDs: fds, maxFDs: maxFDs, startTimeSeconds: bootTime + start / ticks)
    }

    /// When the system booted (`btime` in /proc/stat), in epoch seconds: a process's start is
    /// counted in clock ticks since then.
    static let bootTime: Double = {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return 0 }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }()
}
