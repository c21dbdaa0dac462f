//! Throwaway databases for tests: a SQLite file in a temporary directory, or a fresh
//! PostgreSQL database (dropped afterwards) on the local server.
//!
//! `HELPLINE_TEST_BACKEND=postgres` runs the suites that use [`TestDb::for_suite`] on
//! PostgreSQL; `HELPLINE_TEST_POSTGRES_URL` names the server (default the local one, trust
//! auth). When PostgreSQL is unreachable a test skips with a printed reason, unless
//! `HELPLINE_REQUIRE_ALL_TESTS=1` (as in CI), where that is a failure.

use std::path::PathBuf;

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub enum TestDb {
    Sqlite {
        dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

fn require_all() -> bool {
    std::env::var("HELPLINE_REQUIRE_ALL_TESTS").is_ok_and(|v| v == "1")
}

impl TestDb {
    pub fn sqlite() -> Self {
        Self::sqlite_in(tempfile::tempdir().expect("tempdir"))
    }

    pub fn sqlite_in(dir: tempfile::TempDir) -> Self {
        let url = format!("sqlite://{}", dir.path().join("helpline.db").display());
        TestDb::Sqlite { dir, url }
    }

    /// A new, empty PostgreSQL database, or `None` (with the reason printed) when there is
    /// no server and skipping is allowed.
    pub async fn postgres() -> Option<Self> {
        let admin = std::env::var("HELPLINE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES.to_string());
        let name = format!("helpline_test_{}", uuid::Uuid::new_v4().simple());
        let created = async {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(&admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await?;
            pool.close().await;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if let Err(e) = created {
            let reason = format!("PostgreSQL at {admin} is not usable ({e})");
            assert!(!require_all(), "HELPLINE_REQUIRE_ALL_TESTS=1 but {reason}");
            eprintln!("SKIPPED: {reason}; set HELPLINE_TEST_POSTGRES_URL or start PostgreSQL");
            return None;
        }
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(TestDb::Postgres { admin, name, url })
    }

    /// The backend the suite runs on (`HELPLINE_TEST_BACKEND`, default sqlite).
    pub async fn for_suite() -> Option<Self> {
        match std::env::var("HELPLINE_TEST_BACKEND").as_deref() {
            Ok("postgres") => Self::postgres().await,
            _ => Some(Self::sqlite()),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }

    /// What a `helpline` process needs in its environment to read this database's callers'
    /// numbers as the tests' own connections do: on PostgreSQL the published development
    /// data key (`helpline::store::connect` uses it there); nothing on SQLite, where the key
    /// file beside the database is found by every process.
    pub fn data_key_env(&self) -> Vec<(&'static str, String)> {
        data_key_env(self.url())
    }

    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            TestDb::Sqlite { dir, .. } => Some(dir.path().to_path_buf()),
            TestDb::Postgres { .. } => None,
        }
    }
}

/// [`TestDb::data_key_env`] for a database URL.
pub fn data_key_env(url: &str) -> Vec<(&'static str, String)> {
    if url.starts_with("postgres") {
        vec![(
            "HELPLINE_DATA_KEY",
            helpline::crypto::development_key_text(),
        )]
    } else {
        Vec::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin, name, .. } = self {
            let (admin, name) = (admin.clone(), name.clone());
            // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .connect(&admin)
                        .await
                    {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&pool)
                                .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}
