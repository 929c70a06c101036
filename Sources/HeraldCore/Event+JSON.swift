extension Event {
    /// The stored form of the event: what `JSONDecoder` reads back into an equal `Event` (the
    /// coding keys, times as seconds since 1970, absent optionals left out). Written by hand because
    /// a JSONEncoder per event was a visible share of durable ingest.
    public func storedJSON() -> [UInt8] {
        var w = JSONWriter(capacity: 256 + title.utf8.count + (message?.utf8.count ?? 0))
        w.beginObject()
        w.field("id", id)
        w.field("incident", incident)
        w.field("status", status.rawValue)
        w.field("severity", severity.rawValue)
        w.field("title", title)
        w.field("message", message)
        w.field("components", components)
        w.field("labels", labels)
        w.field("link", link)
        w.key("occurred_at")
        w.double(occurredAt.timeIntervalSince1970)
        w.key("received_at")
        w.double(receivedAt.timeIntervalSince1970)
        w.field("source", source)
        w.field("actor", actor)
        if !omitted.isEmpty { w.field("omitted", omitted.sorted().map(\.rawValue)) }
        w.endObject()
        return w.bytes
    }
}
