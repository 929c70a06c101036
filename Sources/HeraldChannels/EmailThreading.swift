import Crypto
import Foundation
import HeraldCore

/// How an email follow-up stays in its notice's conversation in the clients people read mail in.
/// `In-Reply-To`/`References` are not enough: Gmail groups a message into a conversation only when
/// its subject matches (ignoring `Re:`), and Outlook threads by `Thread-Topic` and `Thread-Index`.
/// So every follow-up (update, all-clear, summary) keeps its notice's subject as `Re: <subject>`
/// whatever its template says (the body says its state in its first line), names the whole chain
/// of earlier messages to its recipient in `References`, and carries Outlook's conversation index:
/// the notice's 22-byte header block, then one 5-byte block per reply level ([MS-OXOMSG]
/// 2.2.1.3). Everything is derived from delivery ids, so a retry writes the same headers.
enum EmailThreading {
    /// The subject: the title for a notice; `Re: <the notice's subject>` for a follow-up.
    static func subject(_ m: OutboundMessage) -> String {
        guard m.kind.isFollowUp else { return m.title }
        return "Re: " + topic(m.noticeTitle ?? m.title)
    }

    /// The thread headers for a message whose Message-ID is `messageID`.
    static func headers(_ m: OutboundMessage, messageID: String, domain: String) -> [(String, String)] {
        guard m.kind.isFollowUp else {
            return [("Thread-Topic", topic(m.title)), ("Thread-Index", index(chain: [messageID]))]
        }
        var chain = m.references.map(EmailChannel.threadID).filter { !$0.isEmpty }
        if chain.isEmpty, let notice = m.noticeDeliveryId {
            // The notice never arrived (a summary): still name it, so the conversation is one.
            chain = ["<\(EmailChannel.msgIDPart(notice))@\(domain)>"]
        }
        var out: [(String, String)] = []
        if let parent = chain.last {
            out.append(("In-Reply-To", parent))
            out.append(("References", chain.joined(separator: "\r\n ")))
        }
        out.append(("Thread-Topic", topic(m.noticeTitle ?? m.title)))
        out.append(("Thread-Index", index(chain: chain + [messageID])))
        return out
    }

    /// A subject without the reply and forward prefixes clients add.
    static func topic(_ subject: String) -> String {
        var s = Substring(subject)
        while true {
            let trimmed = s.drop { $0 == " " }
            guard let colon = trimmed.prefix(5).firstIndex(of: ":") else { return String(trimmed) }
            let prefix = trimmed[trimmed.startIndex..<colon].lowercased()
            guard ["re", "fw", "fwd", "aw", "sv"].contains(prefix) else { return String(trimmed) }
            s = trimmed[trimmed.index(after: colon)...]
        }
    }

    /// Outlook's conversation index, base64: the header block of the chain's first message, then a
    /// response level for each later one (its time after the first, in FILETIME units).
    static func index(chain: [String]) -> String {
        guard let root = chain.first else { return "" }
        let rootID = leftPart(root)
        let rootTime = filetime(of: rootID)
        var bytes: [UInt8] = [0x01]
        for shift in stride(from: 56, through: 24, by: -8) { bytes.append(UInt8(truncatingIfNeeded: rootTime >> UInt64(shift))) }
        bytes += Array(SHA256.hash(data: Data(rootID.utf8)).prefix(16))
        for (level, reference) in chain.dropFirst().enumerated() {
            let id = leftPart(reference)
            let delta = filetime(of: id) &- rootTime
            let small = delta < (1 << 49)
            let code: UInt32 = small ? 0 : 0x8000_0000
            let value = UInt32(truncatingIfNeeded: (small ? delta >> 18 : delta >> 23) & 0x7FFF_FFFF) | code
            bytes += [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
                      UInt8(truncatingIfNeeded: value)]
            let random = (Array(SHA256.hash(data: Data(id.utf8))).first ?? 0) & 0xF0
            bytes.append(random | UInt8((level + 1) & 0x0F))
        }
        return Data(bytes).base64EncodedString()
    }

    /// `dlv_01J…` out of `<dlv_01J…@example.com>`.
    static func leftPart(_ messageID: String) -> String {
        var s = Substring(messageID)
        if s.hasPrefix("<") { s = s.dropFirst() }
        return String(s.prefix { $0 != "@" && $0 != ">" })
    }

    /// The creation time a Herald id carries (its ULID's milliseconds) as a FILETIME (100 ns since
    /// 1601); 1970 for an id that carries none.
    static func filetime(of id: String) -> UInt64 {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        var ms: UInt64 = 0
        let body = id.split(separator: "_").last.map(String.init) ?? id
        for ch in body.uppercased().prefix(10) {
            guard let digit = alphabet.firstIndex(of: ch) else { ms = 0; break }
            ms = ms << 5 | UInt64(digit)
        }
        return (ms + 11_644_473_600_000) &* 10_000
    }
}
