import Foundation

/// The Python that runs the test peers (aiosmtpd, matrix-synapse, …): `$HERALD_TEST_PYTHON`,
/// which `scripts/test` points at a virtualenv it prepares, or `python3` on PATH.
public enum TestPython {
    public static var path: String {
        ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] ?? "/usr/bin/env"
    }
    public static var prefixArguments: [String] {
        ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] == nil ? ["python3"] : []
    }
}
