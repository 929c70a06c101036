/// The rule for text that comes from outside (events from the API, hooks and the CLI): no
/// control characters but tab and newline, and those only where a text may span lines. NUL would
/// be refused by PostgreSQL (failing every other event of its group commit), and the others have
/// no business in a title, a label or a chat message. A CR LF pair is read as a newline.
public enum TextRules {
    /// `text` as it may be stored (CR LF turned into LF), or why it may not: nil when it is fine.
    /// Copies nothing when the text has no control character at all, the usual case.
    public static func check(_ text: String, multiline: Bool) -> (text: String, problem: String?) {
        var needsWork = false
        for b in text.utf8 where b < 0x20 || b == 0x7F || b == 0xC2 {
            needsWork = true
            break
        }
        guard needsWork else { return (text, nil) }
        let normalised = multiline ? text.replacingOccurrences(of: "\r\n", with: "\n") : text
        for scalar in normalised.unicodeScalars where scalar.properties.generalCategory == .control {
            if multiline && (scalar == "\n" || scalar == "\t") { continue }
            let code = String(scalar.value, radix: 16, uppercase: true)
            let name = "U+" + String(repeating: "0", count: max(0, 4 - code.count)) + code
            return (normalised, multiline
                ? "must not contain control characters other than tab and newline (found \(name))"
                : "must not contain control characters (found \(name))")
        }
        return (normalised, nil)
    }

    /// `text` with every control character but tab and newline replaced by U+FFFD, for free-form
    /// machine-made details that are kept rather than refused.
    public static func cleaned(_ text: String) -> String {
        let (checked, problem) = check(text, multiline: true)
        guard problem != nil else { return checked }
        return String(String.UnicodeScalarView(checked.unicodeScalars.map { s in
            s.properties.generalCategory == .control && s != "\n" && s != "\t" ? "\u{FFFD}" : s
        }))
    }
}
