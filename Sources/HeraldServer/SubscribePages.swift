import Foundation
import HeraldCore

/// The pages of the status page's subscriptions: sign up, confirm, choose components, unsubscribe.
/// Server-rendered forms, no script; every value escaped; the status page's stylesheet.
enum SubscribePages {
    static func escape(_ s: String) -> String { s.htmlEscaped }

    static func page(title: String, heading: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>\(escape(heading)) · \(escape(title))</title>
        <style>\(StatusPage.stylesheet)</style></head>
        <body><header><p><a href="/status">\(escape(title))</a></p><h1>\(escape(heading))</h1></header>
        <main>\(body)</main></body></html>

        """
    }

    /// Checkboxes for the declared components (none ticked: all of them).
    static func componentChoice(_ components: [StatusPageConfig.Component], chosen: [String]) -> String {
        guard !components.isEmpty else { return "" }
        var s = "<fieldset><legend>Components (none ticked: all of them)</legend>"
        for (i, c) in components.enumerated() {
            let checked = chosen.contains(c.name) ? " checked" : ""
            s += "<p class=\"choice\"><input type=\"checkbox\" name=\"components\" id=\"c\(i)\" value=\"\(escape(c.name))\"\(checked)> "
                + "<label for=\"c\(i)\">\(escape(c.group.map { "\($0): " } ?? "") + escape(c.name))</label></p>"
        }
        return s + "</fieldset>"
    }

    static func signUp(title: String, components: [StatusPageConfig.Component], csrf: String, error: String? = nil,
                       address: String = "", chosen: [String] = []) -> String {
        var body = "<p>Get an email when an incident starts, as it develops, and the moment it is resolved.</p>"
        if let error { body += "<p class=\"error\" role=\"alert\">\(escape(error))</p>" }
        body += """
            <form method="post" action="/status/subscribe">
            <input type="hidden" name="csrf" value="\(escape(csrf))">
            <p><label for="email">Email address</label><br>
            <input type="email" id="email" name="email" required maxlength="254" autocomplete="email" value="\(escape(address))"></p>
            \(componentChoice(components, chosen: chosen))
            <p><button type="submit">Subscribe</button></p>
            </form>
            <p class="meta">We send a confirmation link first; nothing else arrives until you follow it.</p>
            """
        return page(title: title, heading: "Subscribe to updates", body: body)
    }

    static func message(title: String, heading: String, text: String, link: (href: String, text: String)? = nil) -> String {
        var body = "<p>\(escape(text))</p>"
        if let link { body += "<p><a href=\"\(escape(link.href))\">\(escape(link.text))</a></p>" }
        return page(title: title, heading: heading, body: body)
    }

    /// A page with one button that POSTs the link's secret (a mail scanner following the link
    /// changes nothing).
    static func button(title: String, heading: String, text: String, action: String, token: String, label: String) -> String {
        page(title: title, heading: heading, body: """
            <p>\(escape(text))</p>
            <form method="post" action="\(escape(action))">
            <input type="hidden" name="token" value="\(escape(token))">
            <p><button type="submit">\(escape(label))</button></p>
            </form>
            """)
    }

    static func manage(title: String, subscriber: Subscriber, components: [StatusPageConfig.Component], saved: Bool) -> String {
        var body = "<p>Updates go to <strong>\(escape(subscriber.address))</strong>.</p>"
        if saved { body += "<p role=\"status\">Saved.</p>" }
        if !components.isEmpty {
            body += """
                <form method="post" action="/status/manage">
                <input type="hidden" name="token" value="\(escape(subscriber.token))">
                \(componentChoice(components, chosen: subscriber.components))
                <p><button type="submit">Save</button></p>
                </form>
                """
        }
        body += """
            <form method="post" action="/status/unsubscribe">
            <input type="hidden" name="token" value="\(escape(subscriber.token))">
            <p><button type="submit">Unsubscribe</button></p>
            </form>
            """
        return page(title: title, heading: "Your subscription", body: body)
    }
}
