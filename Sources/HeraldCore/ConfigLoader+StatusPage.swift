import Foundation

/// `status_page:` (see `StatusPageConfig`).
extension LoadContext {
    func loadStatusPage(_ node: YNode) -> StatusPageConfig {
        var page = StatusPageConfig()
        guard let m = MapReader(self, node, "status_page") else { return page }
        m.checkKeys(["title", "url", "logo", "components"])
        if case let (v, p)? = m.entry("title"), let s = get({ try reader.string(v, p) }) {
            if s.trimmingCharacters(in: .whitespaces).isEmpty || s.count > 200 { report(v, p, "must be 1 to 200 characters") } else { page.title = s }
        }
        if case let (v, p)? = m.entry("url"), let s = get({ try reader.string(v, p) }) {
            let lower = s.lowercased()
            if (lower.hasPrefix("https://") || lower.hasPrefix("http://")), URL(string: s)?.host?.isEmpty == false {
                page.url = s
            } else {
                report(v, p, "expected an http:// or https:// URL")
            }
        }
        if case let (v, p)? = m.entry("logo"), let s = get({ try reader.string(v, p) }) {
            let path = s.hasPrefix("/") ? s : directory + "/" + s
            if StatusPageConfig.logoType(path) == nil {
                report(v, p, "expected a .png, .svg, .jpg, .webp or .gif file")
            } else if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int {
                if size > StatusPageConfig.logoLimit { report(v, p, "is larger than 512 KB") } else { page.logo = path }
            } else {
                report(v, p, "cannot read the file")
            }
        }
        if case let (v, p)? = m.entry("components") {
            guard case .sequence(let items) = v.kind else {
                report(v, p, "expected a list of components")
                return page
            }
            var names: Set<String> = []
            for (index, item) in items.enumerated() {
                let itemPath = "\(p)[\(index)]"
                var component: StatusPageConfig.Component?
                if case .scalar(let name) = item.kind {
                    component = .init(name: name)
                } else if let c = MapReader(self, item, itemPath) {
                    c.checkKeys(["name", "group", "description"])
                    if case let (nv, np)? = c.entry("name"), let name = get({ try reader.string(nv, np) }) {
                        component = .init(name: name)
                    } else {
                        c.missing("name")
                    }
                    if case let (gv, gp)? = c.entry("group"), let group = get({ try reader.string(gv, gp) }) { component?.group = group }
                    if case let (dv, dp)? = c.entry("description"), let d = get({ try reader.string(dv, dp) }) { component?.description = d }
                }
                guard let component else { continue }
                if component.name.trimmingCharacters(in: .whitespaces).isEmpty {
                    report(item, itemPath, "a component needs a name")
                } else if !names.insert(component.name).inserted {
                    report(item, itemPath, "component \"\(component.name)\" is declared twice")
                } else {
                    page.components.append(component)
                }
            }
        }
        return page
    }
}
