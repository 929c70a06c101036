extension StringProtocol {
    /// Without leading and trailing white space (Unicode White_Space: spaces, tabs, line breaks).
    /// Foundation's `trimmingCharacters(in:)` goes through NSString and showed up in delivery
    /// profiles; this walks the scalars once and returns early when there is nothing to trim.
    public func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
