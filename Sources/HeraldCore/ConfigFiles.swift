import Foundation

struct FileReadFailure: Error {
    var text: String
}

/// The contents of a text file, or why it cannot be read (without its contents).
func readTextFile(_ path: String) -> Result<String, FileReadFailure> {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        return .failure(.init(text: "no such file"))
    }
    if isDirectory.boolValue { return .failure(.init(text: "is a directory")) }
    guard FileManager.default.isReadableFile(atPath: path) else { return .failure(.init(text: "permission denied")) }
    guard let data = FileManager.default.contents(atPath: path) else { return .failure(.init(text: "read failed")) }
    guard let text = String(data: data, encoding: .utf8) else { return .failure(.init(text: "not valid UTF-8")) }
    return .success(text)
}

/// A secret kept in a file: the trimmed contents. Relative paths are resolved against `directory`.
func readSecretFile(_ path: String, relativeTo directory: String) -> Result<String, FileReadFailure> {
    let resolved = path.hasPrefix("/") || directory.isEmpty ? path : (directory as NSString).appendingPathComponent(path)
    switch readTextFile(resolved) {
    case .failure(let failure): return .failure(failure)
    case .success(let text):
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return .failure(.init(text: "file is empty")) }
        return .success(trimmed)
    }
}

func directoryOf(_ file: String) -> String {
    guard file.contains("/") else { return "" }
    return (file as NSString).deletingLastPathComponent
}

// MARK: - Environment substitution

/// Replaces `${VAR}`, `${VAR:-default}` and `$$` in `text`. Returns the problem instead when a
/// variable without default is unset or a reference is malformed.
func substituteEnvironment(_ text: String, _ environment: [String: String]) -> Result<String, FileReadFailure> {
    guard text.contains("$") else { return .success(text) }
    var out = ""
    var i = text.startIndex
    while i < text.endIndex {
        let ch = text[i]
        guard ch == "$" else {
            out.append(ch)
            i = text.index(after: i)
            continue
        }
        let next = text.index(after: i)
        if next < text.endIndex, text[next] == "$" {
            out.append("$")
            i = text.index(after: next)
        } else if next < text.endIndex, text[next] == "{" {
            let start = text.index(after: next)
            guard let close = text[start...].firstIndex(of: "}") else {
                return .failure(.init(text: "unterminated ${ in value"))
            }
            let body = text[start..<close]
            var name = Substring(body)
            var fallback: Substring?
            if let sep = body.range(of: ":-") {
                name = body[..<sep.lowerBound]
                fallback = body[sep.upperBound...]
            }
            guard let first = name.first, first == "_" || (first.isASCII && first.isLetter),
                  name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
                return .failure(.init(text: "invalid environment variable reference (use ${NAME} or ${NAME:-default})"))
            }
            let value = environment[String(name)]
            if let fallback {
                out += (value?.isEmpty ?? true) ? String(fallback) : value!
            } else if let value {
                out += value
            } else {
                return .failure(.init(text: "environment variable \(name) is not set"))
            }
            i = text.index(after: close)
        } else {
            out.append("$")
            i = next
        }
    }
    return .success(out)
}
