import Foundation

/// `templates:`, global and per channel.
extension LoadContext {
    /// `templates:` — Mustache sources for `notice_title`, `notice_text`, `update_title`,
    /// `update_text`, `all_clear_title`, `all_clear_text`, `summary_title`, `summary_text`; each
    /// is compiled here so a syntax error is reported with its location.
    func loadTemplates(_ node: YNode, into templates: inout MessageRenderer.Templates) {
        let sources = templateSources(node, path: "templates")
        for (key, field) in MessageRenderer.Templates.keys {
            if let source = sources[key] { templates[keyPath: field] = source }
        }
    }

    /// The templates a `templates:` mapping sets, by key, each compiled here so a syntax error is
    /// reported with its location (the global section, or a channel's).
    func templateSources(_ node: YNode, path: String) -> [String: String] {
        guard let m = MapReader(self, node, path) else { return [:] }
        let keys = MessageRenderer.Templates.keys
        m.checkKeys(keys.map(\.0))
        var sources: [String: String] = [:]
        for (key, field) in keys {
            guard case let (v, p)? = m.entry(key), let source = get({ try reader.string(v, p) }) else { continue }
            var candidate = MessageRenderer.Templates()
            candidate[keyPath: field] = source
            do {
                _ = try MessageRenderer(templates: candidate)
                if let unknown = TemplateNames.firstUnknown(in: source) {
                    report(v, p, "invalid template: \(unknown)")
                    continue
                }
                sources[key] = source
            } catch {
                report(v, p, "invalid template: \(error)")
            }
        }
        return sources
    }
}
