extension StringProtocol {
    /// Without leading and trailing white space (Unicode White_Space: spaces, tabs, line breaks).
    /// Foundation's `trimmingCharacters(in:)` goes through NSString and showed up in delivery
    /// profiles; this looks at the two ends and copies nothing more when there is nothing to trim
    /// (the common case: rebuilding the scalars was itself a visible cost of ingest).
    public func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.first, let last = scalars.last else { return "" }
        if !first.properties.isWhitespace && !last.properties.isWhitespace { return String(self) }
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(String.UnicodeScalarView(scalars[start...end]))
    }
}
