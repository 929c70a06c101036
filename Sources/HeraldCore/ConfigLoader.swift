import Foundation
import Yams

/// Reads the YAML configuration file into a validated `HeraldConfig`, reporting every problem at once.
public enum ConfigLoader {
    /// Reads and validates the file. Throws `ConfigErrors` listing every problem found.
    /// `environment` replaces `${VAR}`; defaults to `ProcessInfo.processInfo.environment`.
    /// `validate` adds checks this module cannot make (channel types and their keys, done by the
    /// channel registry) so that every problem is reported in one run.
    public static func load(file: String, environment: [String: String]? = nil,
                            validate: ((HeraldConfig) -> [ConfigError])? = nil) throws -> HeraldConfig {
        let text: String
        switch readTextFile(file) {
        case .success(let contents): text = contents
        case .failure(let reason):
            throw ConfigErrors(errors: [ConfigError(file: file, line: 0, column: 0, keyPath: "", message: "cannot read: \(reason.text)")])
        }
        return try load(yaml: text, file: file, environment: environment, validate: validate)
    }

    public static func load(yaml: String, file: String, environment: [String: String]? = nil,
                            validate: ((HeraldConfig) -> [ConfigError])? = nil) throws -> HeraldConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigErrors(errors: [yamlError(error, file: file)])
        }
        var config = HeraldConfig(file: file)
        guard let root else { return config }
        let context = LoadContext(file: file, environment: environment ?? ProcessInfo.processInfo.environment)
        let tree = context.substitute(YNode(root), path: "")
        context.loadRoot(tree, into: &config)
        var errors = context.errors
        if let validate { errors += validate(config) }
        if !errors.isEmpty {
            throw ConfigErrors(errors: errors.inFileOrder())
        }
        return config
    }

    static func yamlError(_ error: any Error, file: String) -> ConfigError {
        func make(_ mark: Mark?, _ message: String) -> ConfigError {
            ConfigError(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, keyPath: "", message: message)
        }
        func make(line: Int, column: Int, _ message: String) -> ConfigError {
            ConfigError(file: file, line: line, column: column, keyPath: "", message: message)
        }
        guard let error = error as? YamlError else { return make(nil, "invalid YAML") }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "invalid YAML: \(problem)"
            if let context, !context.text.isEmpty { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            return make(mark, message)
        case let .reader(problem, offset, _, yaml):
            guard let offset else { return make(nil, "invalid YAML: \(problem)") }
            let lines = yaml.utf8.prefix(offset).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            return make(line: lines.count, column: (lines.last?.count ?? 0) + 1, "invalid YAML: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            return make(context.mark, "invalid YAML: duplicate key \(keys)")
        case .dataCouldNotBeDecoded:
            return make(nil, "invalid YAML: not valid UTF-8")
        default:
            return make(nil, "invalid YAML")
        }
    }
}
