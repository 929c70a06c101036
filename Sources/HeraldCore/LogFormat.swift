/// `server.log_format` (and `herald serve --log-format`): how log lines are written to standard
/// error. `text`: `key=value` lines for people; `json`: one JSON object per line (time, level,
/// label, message, and the metadata — delivery, incident, channel ids — as fields) for Loki,
/// Elasticsearch or CloudWatch. Configured secrets are masked in both.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}
