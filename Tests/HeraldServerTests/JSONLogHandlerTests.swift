import Foundation
import HeraldCore
import Logging
import Testing
@testable import HeraldServer

/// The JSON log line itself: valid JSON whatever the text holds, metadata as fields, reserved
/// names kept apart, secrets masked in the message, values and nested values.
@Suite struct JSONLogHandlerTests {
    @Test func everyLineIsOneJSONObjectWithSecretsMasked() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("herald-jsonlog-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        let redaction = LogRedaction(Redactor(secrets: ["s3cr3t-token-value", "hunter2"]))
        var logger = Logger(label: "herald") { JSONLogHandler(label: $0, redaction: redaction, output: LogOutput(fd: handle.fileDescriptor)) }
        logger.logLevel = .debug
        logger[metadataKey: "channel"] = "hook"
        logger.warning("delivery failed: \"quoted\" \\ tab\there\nnewline \u{01} é 🚨 \u{2028} token s3cr3t-token-value", metadata: [
            "delivery": "dlv_1", "incident": "dns", "message": "shadowing", "time": "shadowing",
            "error": .stringConvertible("password hunter2 refused"),
            "nested": ["list": ["a", "hunter2"], "n": "1"],
        ])
        logger.trace("below the level: not written")
        logger.info("second line")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2, "\(text)")
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["level"] as? String == "warning" && first["label"] as? String == "herald")
        #expect(first["message"] as? String
                == "delivery failed: \"quoted\" \\ tab\there\nnewline \u{01} é 🚨 \u{2028} token ****")
        #expect(first["channel"] as? String == "hook" && first["delivery"] as? String == "dlv_1" && first["incident"] as? String == "dns")
        #expect(first["meta_message"] as? String == "shadowing" && first["meta_time"] as? String == "shadowing")
        #expect((first["time"] as? String)?.hasSuffix("Z") == true)
        #expect(first["error"] as? String == "password **** refused")
        let nested = try #require(first["nested"] as? [String: Any])
        #expect(nested["list"] as? [String] == ["a", "****"] && nested["n"] as? String == "1")
        #expect(!text.contains("s3cr3t-token-value") && !text.contains("hunter2"))
        let second = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(second["message"] as? String == "second line" && second["channel"] as? String == "hook")
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 1_800_000_000.1234)) == "2027-01-15T08:00:00.123Z")
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    @Test func logFormatIsReadFromTheFile() throws {
        #expect(try ConfigLoader.load(yaml: "server: {log_format: json}", file: "h.yaml").server.logFormat == .json)
        #expect(try ConfigLoader.load(yaml: "server: {}", file: "h.yaml").server.logFormat == .text)
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(yaml: "server: {log_format: yaml}", file: "h.yaml") }
    }
}
