/// The names a message template may use, and the check that it uses no other: Mustache renders
/// an unknown name as nothing, so `{{incident.title}}` would send an empty title for years
/// before anyone noticed. `herald check` (and a reload) refuse it instead, naming what is meant.
public enum TemplateNames {
    /// Every value `MessageRenderer` offers a template, plus `label_<name>` for each label.
    public static let known: [String] = [
        "incident", "status", "status_upper", "updated", "acknowledged", "resolved", "severity", "severity_upper",
        "title", "message", "components", "link", "actor", "opened_at", "occurred_at", "resolved_at", "duration",
    ]

    /// The first name in `source` that no event can give a value, with a suggestion; nil when
    /// every tag names a known value (or the template changes its delimiters, which this reader
    /// does not follow).
    public static func firstUnknown(in source: String) -> String? {
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            rest = rest[open.upperBound...]
            guard let close = rest.range(of: "}}") else { return nil }
            var tag = rest[..<close.lowerBound]
            rest = rest[close.upperBound...]
            if tag.hasPrefix("{") {
                tag = tag.dropFirst()
                if rest.hasPrefix("}") { rest = rest.dropFirst() }
            }
            guard let sigil = tag.first else { continue }
            switch sigil {
            case "!", "%", ">", "<", "$": continue
            case "=": return nil
            case "#", "^", "/", "&": tag = tag.dropFirst()
            default: break
            }
            let name = tag.trimmingWhitespace()
            if name.isEmpty || name == "." || isKnown(name) { continue }
            return describe(name)
        }
        return nil
    }

    static func isKnown(_ name: String) -> Bool {
        known.contains(name) || (name.hasPrefix("label_") && name.count > 6)
    }

    static func describe(_ name: String) -> String {
        var text = "{{\(name)}} is not a value a template can use"
        let last = name.split(separator: ".").last.map(String.init) ?? name
        if last != name, isKnown(last) {
            text += "; did you mean {{\(last)}}?"
        } else if name.hasPrefix("labels.") {
            text += "; a label is {{label_\(name.dropFirst(7))}}"
        } else {
            text += " (values: \(known.joined(separator: ", ")), label_<name>)"
        }
        return text
    }
}
