import Foundation
import HeraldCore
import HTTPTypes
import Hummingbird
import NIOCore

/// The console's page frame: semantic HTML, one stylesheet allowed by its hash, no script at all,
/// every value escaped. Titles and messages come from anyone with an ingest token: they are text
/// here, and the Content-Security-Policy is the second lock.
enum ConsoleLayout {
    static let stylesheet = """
        *{box-sizing:border-box}body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa;overflow-wrap:anywhere}
        header{background:#1d2733;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center}
        header a{color:#fff}header nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem}header .who{margin-left:auto;display:flex;gap:.5rem;align-items:center}
        main{padding:1rem;max-width:80rem;margin:0 auto}h1{font-size:1.4rem;margin:.5rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
        a{color:#0645ad}a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #f90;outline-offset:1px}
        .table{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
        th{font-weight:600;background:#f0f2f5}td.num,th.num{text-align:right}
        .badge{display:inline-block;padding:0 .4rem;border-radius:.3rem;font-size:.85rem;font-weight:600;background:#eee;color:#333}
        .delivered,.resolved,.healthy,.active-ok{background:#dff3e4;color:#0b5e26}.failed,.open,.paused,.critical{background:#fde2e2;color:#8b0000}
        .retrying,.failing,.major,.acknowledged{background:#fff0cc;color:#6b4e00}.queued,.in_flight,.pending{background:#e3ecfd;color:#0b3d8b}
        .silenced,.superseded,.expired{background:#eee;color:#555}
        form.inline{display:inline}form.stack p{margin:.5rem 0}label{font-weight:600}
        input[type=text],input[type=password],select,textarea{font:inherit;padding:.35rem;width:100%;max-width:24rem}textarea{height:5rem}
        button{font:inherit;padding:.35rem .9rem;cursor:pointer}button.danger{background:#8b0000;color:#fff;border:1px solid #600}
        .filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end}.filters p{margin:0}.filters input,.filters select{width:12rem}
        .notice{padding:.6rem 1rem;border-radius:.4rem;background:#e3ecfd;margin:0 0 1rem}.error{background:#fde2e2;color:#8b0000;padding:.6rem 1rem;border-radius:.4rem;margin:0 0 1rem}
        dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}dt{font-weight:600}dd{margin:0}
        pre{background:#fff;border:1px solid #ddd;padding:.75rem;overflow-x:auto;white-space:pre-wrap;font-size:.85rem}
        .meta{color:#555;font-size:.9rem}.actions{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}.actions form.stack{flex:1 1 16rem;min-width:0}
        @media (max-width:40rem){header .who{margin-left:0}th,td{padding:.3rem}main{padding:.6rem}}
        """

    /// No script, no frames, forms only to the console itself.
    static let policy = "default-src 'none'; style-src '\(PublicHeaders.hash(stylesheet))'; img-src 'self'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    static func escape(_ s: String) -> String { s.htmlEscaped }

    /// `refresh`: seconds after which the browser reloads the page (the lists stay live without script).
    static func page(_ heading: String, user: String?, csrf: String?, refresh: Int? = nil, body: String) -> String {
        var nav = ""
        if let user, let csrf {
            nav = """
                <nav aria-label="Console"><a href="/console/incidents">Incidents</a><a href="/console/deliveries">Deliveries</a>\
                <a href="/console/channels">Channels</a><a href="/console/silences">Silences</a></nav>
                <div class="who"><span>\(escape(user))</span><form class="inline" method="post" action="/console/signout">\
                <input type="hidden" name="csrf" value="\(escape(csrf))"><button type="submit">Sign out</button></form></div>
                """
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">\(refresh.map { "\n<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")
            <title>\(escape(heading)) · Herald console</title>
            <style>\(stylesheet)</style></head>
            <body><header><strong>Herald</strong>\(nav)</header>
            <main><h1>\(escape(heading))</h1>
            \(body)
            </main></body></html>

            """
    }

    static func response(_ status: HTTPResponse.Status, _ html: String, extra: HTTPFields = [:]) -> Response {
        var headers = PublicHeaders.fields(contentType: "text/html; charset=utf-8", policy: policy)
        headers[.cacheControl] = "no-store"
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ location: String, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        headers.append(contentsOf: extra)
        return Response(status: .seeOther, headers: headers)
    }

    /// A time as UTC text in a `<time>` element.
    static func time(_ date: Date?) -> String {
        guard let date else { return "" }
        let iso = RFC3339.format(date)
        let shown = iso.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " UTC")
        return "<time datetime=\"\(escape(iso))\">\(escape(shown))</time>"
    }

    static func badge(_ text: String) -> String {
        "<span class=\"badge \(escape(text))\">\(escape(text.replacingOccurrences(of: "_", with: " ")))</span>"
    }

    static func table(_ headings: [String], _ rows: [[String]], caption: String? = nil, empty: String) -> String {
        guard !rows.isEmpty else { return "<p class=\"meta\">\(escape(empty))</p>" }
        var s = "<div class=\"table\"><table>"
        if let caption { s += "<caption class=\"meta\">\(escape(caption))</caption>" }
        s += "<thead><tr>" + headings.map { "<th scope=\"col\">\(escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows { s += "<tr>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>" }
        return s + "</tbody></table></div>"
    }

    /// A link to a console path whose last part is a key (percent-encoded, then escaped).
    static func link(_ base: String, _ key: String, text: String? = nil) -> String {
        let encoded = key.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? key
        return "<a href=\"\(escape(base + encoded))\">\(escape(text ?? key))</a>"
    }

    /// An outside link from event data, only when it is http(s); otherwise its text.
    static func outside(_ url: String) -> String {
        let lower = url.lowercased()
        guard lower.hasPrefix("https://") || lower.hasPrefix("http://") else { return escape(url) }
        return "<a href=\"\(escape(url))\" rel=\"noreferrer noopener\">\(escape(url))</a>"
    }

    /// A state-changing form: the session's CSRF token, optional hidden fields, one button.
    static func button(_ action: String, csrf: String, label: String, fields: [(String, String)] = [], danger: Bool = false) -> String {
        "<form class=\"inline\" method=\"post\" action=\"\(escape(action))\"><input type=\"hidden\" name=\"csrf\" value=\"\(escape(csrf))\">"
            + fields.map { "<input type=\"hidden\" name=\"\(escape($0.0))\" value=\"\(escape($0.1))\">" }.joined()
            + "<button type=\"submit\"\(danger ? " class=\"danger\"" : "")>\(escape(label))</button></form>"
    }

    static func shorten(_ s: String?, _ n: Int = 160) -> String {
        guard let s else { return "" }
        return escape(s.count > n ? String(s.prefix(n)) + "…" : s)
    }
}
