/// The version of this Herald: `herald --version`, and `herald_build_info{version}` in /metrics.
/// Set when a release is cut.
public enum HeraldVersion {
    public static let current = "0.12.0-dev"
}
