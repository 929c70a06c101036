import Foundation

/// `status_page:` — how the public status page introduces itself: a name, a link home, a logo or
/// not, and the components customers look for, declared up front so that on a good day the page
/// lists them as operational instead of nothing.
public struct StatusPageConfig: Sendable, Equatable {
    public struct Component: Sendable, Equatable {
        /// The name events use in `components`.
        public var name: String
        /// A heading the page groups it under (nil: ungrouped, listed first).
        public var group: String?
        public var description: String?
        public init(name: String, group: String? = nil, description: String? = nil) {
            self.name = name
            self.group = group
            self.description = description
        }
    }

    /// The page's heading (nil: `server.status_title`, default "Service status").
    public var title: String?
    /// The organisation's home page, linked from the heading (http or https).
    public var url: String?
    /// A logo image file (PNG, SVG, JPEG, WebP or GIF, at most 512 KB), served at `/status/logo`.
    public var logo: String?
    public var components: [Component] = []

    public init(title: String? = nil, url: String? = nil, logo: String? = nil, components: [Component] = []) {
        self.title = title
        self.url = url
        self.logo = logo
        self.components = components
    }

    /// The largest logo file accepted.
    public static let logoLimit = 512 * 1024

    /// The media type of a logo file, by its extension; nil for another kind of file.
    public static func logoType(_ path: String) -> String? {
        switch (path as NSString).pathExtension.lowercased() {
        case "png": return "image/png"
        case "svg": return "image/svg+xml"
        case "jpg", "jpeg": return "image/jpeg"
        case "webp": return "image/webp"
        case "gif": return "image/gif"
        default: return nil
        }
    }
}
