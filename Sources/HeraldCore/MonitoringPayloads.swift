import Foundation

/// Monitoring tools' native webhook payloads, mapped to Herald events. Pure parsing: the server
/// authenticates, commits and answers.
public enum MonitoringPayloads {
    /// Prometheus Alertmanager's webhook (payload version 4) and Grafana's alerting webhook, which
    /// shares its shape: one event per alert. The incident key is `PREFIX:<fingerprint>`, or,
    /// when `keyLabels` is given, `PREFIX:` + those labels' values, so that an alert keeps its key
    /// across Alertmanager restarts and label-set changes the operator does not care about.
    /// Severity comes from the `severity` label; the title from the `summary` annotation (else
    /// the alert name and instance); labels are kept, and annotations too as `annotation_<name>`.
    public static func alertmanager(json data: some Collection<UInt8>, source: String, keyLabels: [String]? = nil,
                                    idFor: () -> String, receivedAt: Date) throws -> [Event] {
        let root = try object(data)
        guard let alerts = root["alerts"] as? [[String: Any]] else {
            throw InputError(field: "alerts", "must be an array of alerts")
        }
        guard !alerts.isEmpty else { throw InputError(field: "alerts", "must not be empty") }
        let commonAnnotations = strings(root["commonAnnotations"])
        var events: [Event] = []
        for (i, alert) in alerts.enumerated() {
            let labels = strings(alert["labels"])
            let annotations = commonAnnotations.merging(strings(alert["annotations"])) { _, own in own }
            guard let statusText = alert["status"] as? String ?? root["status"] as? String,
                  let status = EventStatus(alias: statusText) else {
                throw InputError(field: "alerts[\(i)].status", "must be firing or resolved")
            }
            let key: String
            if let keyLabels, !keyLabels.isEmpty, keyLabels.contains(where: { labels[$0] != nil }) {
                key = keyLabels.map { labels[$0] ?? "" }.joined(separator: ",")
            } else if let fingerprint = alert["fingerprint"] as? String, !fingerprint.isEmpty {
                // Also when none of the key labels is on this alert: its fingerprint still identifies it.
                key = fingerprint
            } else {
                key = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            }
            guard !key.isEmpty else { throw InputError(field: "alerts[\(i)].fingerprint", "is required (or labels to key on)") }
            try checkText(key, field: "alerts[\(i)].fingerprint", multiline: false)
            for (k, v) in labels.sorted(by: { $0.key < $1.key }) {
                try checkText(k, field: "alerts[\(i)].labels", multiline: false)
                try checkText(v, field: "alerts[\(i)].labels.\(k)", multiline: true)
            }
            for (k, v) in annotations.sorted(by: { $0.key < $1.key }) {
                try checkText(k, field: "alerts[\(i)].annotations", multiline: false)
                try checkText(v, field: "alerts[\(i)].annotations.\(k)", multiline: true)
            }
            let alertname = labels["alertname"] ?? "alert"
            var title = annotations["summary"] ?? annotations["title"] ?? alertname
            if annotations["summary"] == nil, let instance = labels["instance"] { title += " on \(instance)" }
            var allLabels = labels
            for (k, v) in annotations { allLabels["annotation_\(k)"] = v }
            let startsAt = (alert["startsAt"] as? String).flatMap(RFC3339.parse)
            let endsAt = (alert["endsAt"] as? String).flatMap(RFC3339.parse).flatMap { $0.timeIntervalSince1970 > 0 ? $0 : nil }
            let link = [annotations["runbook_url"], alert["panelURL"] as? String, alert["dashboardURL"] as? String,
                        alert["generatorURL"] as? String].compactMap { $0 }.first { isHTTP($0) }
            let components = [labels["component"], labels["service"], labels["job"]].compactMap { $0 }.prefix(1)
            let severity = labels["severity"].flatMap(Severity.init(alias:))
            var omitted: Set<Event.Field> = []
            if severity == nil { omitted.insert(.severity) }
            if components.isEmpty { omitted.insert(.components) }
            if link == nil { omitted.insert(.link) }
            let message = annotations["description"] ?? annotations["message"] ?? (alert["valueString"] as? String)
            if let message { try checkText(message, field: "alerts[\(i)].valueString", multiline: true) }
            events.append(Event(
                id: idFor(), incident: "\(source):\(key)".truncated(to: EventInput.maxIncidentLength), status: status,
                severity: severity ?? .major,
                title: String(title.prefix(EventInput.maxTitleLength)),
                message: message.map { TextRules.check($0, multiline: true).text },
                components: Array(components), labels: allLabels.mapValues { TextRules.check($0, multiline: true).text }, link: link,
                occurredAt: (status == .resolved ? endsAt : startsAt) ?? receivedAt, receivedAt: receivedAt,
                source: source, omitted: omitted))
        }
        return events
    }

    /// A PagerDuty Events API v2 event (`POST /v2/enqueue`). `routing_key` is checked by the
    /// caller. `trigger` without a `dedup_key` gets a fresh one, as PagerDuty does.
    public struct PagerDutyEvent: Sendable {
        public var routingKey: String
        public var event: Event
        public var dedupKey: String
    }

    public static func pagerDuty(json data: some Collection<UInt8>, id: String, receivedAt: Date,
                                 newKey: () -> String) throws -> PagerDutyEvent {
        let root = try object(data)
        guard let routingKey = root["routing_key"] as? String, !routingKey.isEmpty else {
            throw InputError(field: "routing_key", "is required")
        }
        guard let action = root["event_action"] as? String else { throw InputError(field: "event_action", "is required") }
        let status: EventStatus
        switch action {
        case "trigger": status = .triggered
        case "acknowledge": status = .acknowledged
        case "resolve": status = .resolved
        default: throw InputError(field: "event_action", "must be trigger, acknowledge or resolve")
        }
        var dedupKey = root["dedup_key"] as? String ?? ""
        if dedupKey.isEmpty {
            guard status == .triggered else { throw InputError(field: "dedup_key", "is required to \(action)") }
            dedupKey = newKey()
        }
        try checkText(dedupKey, field: "dedup_key", multiline: false)
        let payload = root["payload"] as? [String: Any] ?? [:]
        var omitted: Set<Event.Field> = []
        var title = payload["summary"] as? String ?? ""
        if status == .triggered && title.isEmpty { throw InputError(field: "payload.summary", "is required") }
        try checkText(title, field: "payload.summary", multiline: true)
        // An acknowledge or resolve usually carries no summary or severity: the incident keeps its own.
        if title.isEmpty {
            title = dedupKey
            omitted.insert(.title)
        }
        var severity = Severity.major
        if let s = payload["severity"] as? String {
            switch s {
            case "critical": severity = .critical
            case "error": severity = .major
            case "warning": severity = .minor
            case "info": severity = .info
            default: throw InputError(field: "payload.severity", "must be critical, error, warning or info")
            }
        } else if status == .triggered {
            throw InputError(field: "payload.severity", "is required")
        } else {
            omitted.insert(.severity)
        }
        var labels: [String: String] = [:]
        for key in ["source", "group", "class"] {
            if let v = payload[key] as? String { labels[key] = try checkText(v, field: "payload.\(key)", multiline: true) }
        }
        // Free-form details are machine-made: kept, with any control character replaced.
        for (k, v) in strings(payload["custom_details"]) { labels["detail_\(TextRules.cleaned(k))"] = TextRules.cleaned(v) }
        let link = (root["links"] as? [[String: Any]])?.compactMap { $0["href"] as? String }.first(where: isHTTP)
            ?? (root["client_url"] as? String).flatMap { isHTTP($0) ? $0 : nil }
        if link == nil { omitted.insert(.link) }
        let component = payload["component"] as? String
        if let component { try checkText(component, field: "payload.component", multiline: false) } else { omitted.insert(.components) }
        if status != .triggered && labels.isEmpty { omitted.insert(.labels) }
        let occurred = (payload["timestamp"] as? String).flatMap(RFC3339.parse) ?? receivedAt
        let event = Event(id: id, incident: "pd:\(dedupKey)".truncated(to: EventInput.maxIncidentLength), status: status, severity: severity,
                          title: String(TextRules.check(title, multiline: true).text.prefix(EventInput.maxTitleLength)), message: nil,
                          components: component.map { [$0] } ?? [], labels: labels, link: link,
                          occurredAt: occurred, receivedAt: receivedAt, source: "pagerduty", omitted: omitted)
        return PagerDutyEvent(routingKey: routingKey, event: event, dedupKey: dedupKey)
    }

    /// The text as stored, or a 400 naming the field (see `TextRules`).
    @discardableResult
    static func checkText(_ text: String, field: String, multiline: Bool) throws(InputError) -> String {
        let (checked, problem) = TextRules.check(text, multiline: multiline)
        if let problem { throw InputError(field: field, problem) }
        return checked
    }

    static func object(_ data: some Collection<UInt8>) throws(InputError) -> [String: Any] {
        guard let any = try? JSONSerialization.jsonObject(with: Data(data)) else { throw InputError(field: nil, "body is not valid JSON") }
        guard let object = any as? [String: Any] else { throw InputError(field: nil, "body must be a JSON object") }
        return object
    }

    /// A string map from a JSON object, numbers and booleans turned into text.
    static func strings(_ value: Any?) -> [String: String] {
        guard let map = value as? [String: Any] else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in map {
            if let s = v as? String { out[k] = s } else if let n = v as? NSNumber { out[k] = n.stringValue }
        }
        return out
    }

    /// Links from a monitoring tool are used only when they are safe http(s) URLs.
    static func isHTTP(_ s: String) -> Bool {
        EventInput.isSafeLink(s)
    }
}
