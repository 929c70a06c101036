import Foundation

// openapi-embed IN OUT: writes OUT, a Swift file holding IN (openapi.json) as one raw string
// literal, `OpenAPIDocument.json`. Run by the EmbedOpenAPI build plugin.

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: openapi-embed openapi.json OpenAPIDocument.swift\n".utf8))
    exit(2)
}
let text: String
do {
    text = try String(contentsOfFile: arguments[1], encoding: .utf8)
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
          object["openapi"] as? String == "3.1.0" else {
        FileHandle.standardError.write(Data("openapi-embed: \(arguments[1]) is not an OpenAPI 3.1.0 document\n".utf8))
        exit(1)
    }
} catch {
    FileHandle.standardError.write(Data("openapi-embed: \(arguments[1]): \(error)\n".utf8))
    exit(1)
}
// A raw string with more #s than any run of #s after a quote in the text, so nothing in the
// document can end it or interpolate.
var longest = 0
var run = 0
var afterQuote = false
for c in text {
    if c == "#" && (afterQuote || run > 0) { run += 1; longest = max(longest, run) } else { run = 0 }
    afterQuote = c == "\"" || c == "\\"
}
let hashes = String(repeating: "#", count: longest + 1)
// The string is the file exactly: its text, then the line break a raw multi-line string drops
// before its closing delimiter.
let swift = "// Generated at build time by the EmbedOpenAPI plugin from openapi.json; not in the repository.\n\n"
    + "/// The OpenAPI 3.1 document of the HTTP API, served at GET /openapi.json.\n"
    + "enum OpenAPIDocument {\n"
    + "    static let json = \(hashes)\"\"\"\n"
    + text + "\n"
    + "\"\"\"\(hashes)\n"
    + "}\n"
do {
    try swift.write(toFile: arguments[2], atomically: true, encoding: .utf8)
} catch {
    FileHandle.standardError.write(Data("openapi-embed: \(arguments[2]): \(error)\n".utf8))
    exit(1)
}
