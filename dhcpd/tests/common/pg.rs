//! A PostgreSQL server of the test's own: a fresh cluster owned by the `postgres` user, trusting
//! 10.20.0.0/16, listening on [`DB`] in the test's namespace.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use e2e::{Host, Proc, Ready};

/// Where the test's PostgreSQL listens (port 5432).
pub const DB: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 9);

/// The PostgreSQL binaries of the installed server, if any.
pub fn pg_bin() -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("postgres").exists() && b.join("initdb").exists())
        .collect();
    v.sort();
    v.pop()
}

/// A database cluster in a fresh folder owned by the `postgres` user.
pub struct Cluster {
    _root: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
}

impl Cluster {
    pub fn init(bin: PathBuf) -> Cluster {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let st = std::process::Command::new("chown")
            .args(["postgres:postgres", data.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hba = data.join("pg_hba.conf");
        let mut t = std::fs::read_to_string(&hba).unwrap();
        t.push_str("host all all 10.20.0.0/16 trust\n");
        std::fs::write(&hba, t).unwrap();
        Cluster {
            _root: root,
            data,
            bin,
        }
    }

    /// Runs the server on `host` (its PID is PostgreSQL's own: setpriv execs).
    pub fn start(&self, host: &Host) -> Proc {
        let d = self.data.to_str().unwrap();
        host.process("setpriv")
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(self.bin.join("postgres"))
            .args(["-D", d, "-k", d, "-p", "5432"])
            .args(["-c", &format!("listen_addresses={DB}")])
            .ready(Ready::Log(
                "database system is ready to accept connections".into(),
            ))
            .timeout(Duration::from_secs(20))
            .spawn()
    }
}

/// A PostgreSQL server alone in a lab of its own (host `db`, [`DB`] on its loopback), for tests
/// of the store itself. Dropped in order: the server, its cluster, the namespace.
pub struct LoneDb {
    _pg: Proc,
    _cluster: Cluster,
    /// The host the server runs in: talk to it from inside (`db.enter`).
    pub db: Host,
    _lab: e2e::Lab,
    /// Its URL for `PgStore::open`.
    pub url: String,
}

impl LoneDb {
    /// Starts one, or says why not (`test` names the caller): `None` when PostgreSQL is not
    /// installed, and the test fails in strict mode or is skipped otherwise.
    pub fn start(prefix: &str, test: &str) -> Option<LoneDb> {
        let Some(bin) = pg_bin() else {
            e2e::skip_or_fail(
                test,
                "PostgreSQL server not installed (Debian package postgresql)",
            );
            return None;
        };
        let lab = e2e::Lab::new(prefix);
        let db = lab.host("db");
        db.link_up("lo");
        db.add_addr("lo", &format!("{DB}/32"));
        let cluster = Cluster::init(bin);
        let pg = cluster.start(&db);
        Some(LoneDb {
            _pg: pg,
            _cluster: cluster,
            db,
            _lab: lab,
            url: format!("postgresql://postgres@{DB}:5432/postgres"),
        })
    }
}
