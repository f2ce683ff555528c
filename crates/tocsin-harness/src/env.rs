//! The environment variables and install locations the tests, the benchmarks and
//! xtask read or set, in one place: a caller names them through these constants, so a
//! rename cannot leave one side behind.

/// Names a prebuilt `tocsin-gateway` binary; when set, the harness uses it as is and
/// never builds (xtask's pipeline and the benchmarks point it at their build).
pub const GATEWAY_BIN: &str = "TOCSIN_GATEWAY_BIN";

/// Names a prebuilt `tocsin-desktop` binary; otherwise `<target>/debug/tocsin-desktop`.
pub const DESKTOP_BIN: &str = "TOCSIN_DESKTOP_BIN";

/// `1` makes a missing desktop binary or session tool fail the desktop tests and the
/// desktop benchmark instead of skipping them (CI sets it).
pub const REQUIRE_DESKTOP: &str = "TOCSIN_REQUIRE_DESKTOP";

/// The gateway's binary name, under `<target>/<profile>/` when no
/// [`GATEWAY_BIN`] names one.
pub const GATEWAY_BINARY: &str = "tocsin-gateway";

/// The desktop app's binary name, under `<target>/<profile>/` when no
/// [`DESKTOP_BIN`] names one.
pub const DESKTOP_BINARY: &str = "tocsin-desktop";

/// The terminal client's binary name, built beside the gateway.
pub const CLIENT_BINARY: &str = "tocsin";

/// The benchmark's binary name, run by `cargo xtask bench`.
pub const BENCH_BINARY: &str = "tocsin-bench";

/// The profile directory of the debug builds the tests run by default.
pub const DEBUG_PROFILE: &str = "debug";

/// Where the desktop tests write screenshots and other artifacts worth keeping.
pub const TEST_ARTIFACTS: &str = "TOCSIN_TEST_ARTIFACTS";

/// Cargo's target directory, honoured when the harness looks for (or builds) the
/// workspace's binaries; relative values are relative to the workspace root.
pub const CARGO_TARGET_DIR: &str = "CARGO_TARGET_DIR";

/// The cargo that runs the tests (`$CARGO`), used to build a missing binary with the
/// same toolchain.
pub const CARGO: &str = "CARGO";

/// The gateway CLI's default for `--data-dir`.
pub const DATA_DIR: &str = "TOCSIN_DATA_DIR";

/// The gateway CLI's default for `serve --listen`.
pub const LISTEN: &str = "TOCSIN_LISTEN";

/// The gateway CLI's default for `--log-format`.
pub const LOG_FORMAT: &str = "TOCSIN_LOG_FORMAT";

/// The gateway CLI's default for `--database`.
pub const DATABASE: &str = "TOCSIN_DATABASE";

/// The gateway's own variables: removed from every gateway the harness starts, so a
/// developer's shell cannot point a test at another data directory or database.
pub const GATEWAY_OWN_ENV: [&str; 4] = [DATA_DIR, LISTEN, LOG_FORMAT, DATABASE];

/// `tocsin-gateway publish`'s API key, read from the environment so a script's key
/// stays out of `ps`.
pub const API_KEY: &str = "TOCSIN_API_KEY";

/// `tocsin-gateway publish`'s gateway URL (otherwise from the data dir's config).
pub const URL: &str = "TOCSIN_URL";

/// The `tocsin` terminal client's profile directory.
pub const CLIENT_HOME: &str = "TOCSIN_CLIENT_HOME";

/// The desktop app's profile directory (the tests pass `--home` instead and remove it).
pub const DESKTOP_HOME: &str = "TOCSIN_DESKTOP_HOME";

/// The soak test's random seed, to replay a failing run.
pub const SOAK_SEED: &str = "TOCSIN_SOAK_SEED";

/// How long the soak test runs, in seconds.
pub const SOAK_SECS: &str = "TOCSIN_SOAK_SECS";

/// How long the cluster soak test runs, in seconds.
pub const CLUSTER_SOAK_SECS: &str = "TOCSIN_CLUSTER_SOAK_SECS";

/// Where schemathesis is installed for the OpenAPI test (`cargo xtask setup` puts it
/// in `.tools/schemathesis`).
pub const SCHEMATHESIS: &str = "TOCSIN_SCHEMATHESIS";

/// A local copy of the RustSec advisory database for `cargo xtask test`'s audit.
pub const ADVISORY_DB: &str = "TOCSIN_ADVISORY_DB";

/// Overrides where PostgreSQL's server binaries (`initdb`, `postgres`, `pg_isready`)
/// are looked up; otherwise Debian's `/usr/lib/postgresql/<major>/bin`, newest first.
pub const PG_BIN_DIR: &str = "TOCSIN_PG_BIN_DIR";

/// Where Debian's `postgresql-<major>` packages put the server binaries.
pub const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// The unprivileged account a cluster runs as when the harness runs as root
/// (`initdb` refuses root); the Debian package creates it.
pub const PG_SYSTEM_USER: &str = "postgres";

/// Overrides the HAProxy binary the cluster tests put in front of the nodes.
pub const HAPROXY_BIN: &str = "TOCSIN_HAPROXY_BIN";

/// Where Debian's `haproxy` package installs it (not on a non-root `PATH`).
pub const HAPROXY_DEFAULT: &str = "/usr/sbin/haproxy";

/// Names the built `tocsin-gateway` .deb the package test installs first
/// (tests/src/packages.rs); xtask's pipeline builds it with `cargo xtask bundle`.
pub const GATEWAY_DEB: &str = "TOCSIN_GATEWAY_DEB";

/// Names the same gateway repacked with a higher version, which the package test
/// installs over [`GATEWAY_DEB`] to run the maintainer scripts' upgrade path.
pub const GATEWAY_DEB_UPGRADE: &str = "TOCSIN_GATEWAY_DEB_UPGRADE";

/// Names the gateway's debug-symbols package (`tocsin-gateway-dbgsym`), checked by
/// the package test against the stripped binary's build id.
pub const GATEWAY_DBGSYM_DEB: &str = "TOCSIN_GATEWAY_DBGSYM_DEB";
