//! The store as Supabase needs it, against the real Postgres: TLS (verified with a CA, refused
//! with the wrong one), the customer's `workers` and `transactions` tables, and voice profiles
//! kept in `voice_profiles` and enrolled again only when the samples change.

use std::path::Path;
use std::sync::Arc;

use adapters::local::LocalSource;
use adapters::store::Store;
use it::{DEMO_LOCATION, Services, TempDir, binary, root};
use ops::Secret;
use pipeline::profile_store::ProfileStore;
use pipeline::services::profiles::{Origin, ProfileError, Profiles};
use pipeline::source::RosterEntry;
use pipeline::{BatcherHandle, spawn_batcher};

const PASSWORD: &str = "planted-db-password-93b1";

fn tls_url(services: &Services) -> String {
    format!(
        "postgres://postgres:{PASSWORD}@localhost:5432/{}?sslmode=require",
        services.database
    )
}

#[tokio::test]
async fn the_store_speaks_tls_and_verifies_the_server_when_given_its_ca() {
    let services = Services::new("tls");
    assert_eq!(
        services.psql("SHOW ssl"),
        "on",
        "this test needs a Postgres with TLS (Debian's has the snakeoil certificate)"
    );
    let store = Store::connect(&Secret::new(tls_url(&services)), None).unwrap();
    store.migrate().await.unwrap();
    let encrypted = services.psql(
        "SELECT count(*) FILTER (WHERE s.ssl) || '/' || count(*) FROM pg_stat_ssl s
         JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name = 'voice-diarization' AND a.datname = current_database()",
    );
    let (ssl, all) = encrypted.split_once('/').unwrap();
    assert!(
        all != "0" && ssl == all,
        "connections with TLS / all: {encrypted}"
    );

    // Verified against the CA that signed the server's certificate (snakeoil signs itself).
    let ca = Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    let verified = Store::connect(&Secret::new(tls_url(&services)), Some(ca)).unwrap();
    verified.job("none").await.unwrap();

    // Another CA: the server is refused, and the error does not quote the password.
    let dir = TempDir::new("tls-ca");
    let (cert, _, key) = it::certificates(dir.path());
    let wrong = Store::connect(&Secret::new(tls_url(&services)), Some(&cert)).unwrap();
    let e = wrong.job("none").await.unwrap_err().to_string();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("issuer"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "{e}");
    // A CA file that holds no certificate is a clear error at connect.
    std::fs::write(&key, "not a certificate").unwrap();
    let e = Store::connect(&Secret::new(tls_url(&services)), Some(&key))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("DATABASE_CA_CERT"), "{e}");
}

#[tokio::test]
async fn workers_and_transactions_come_from_the_customers_tables() {
    let services = Services::new("roster");
    let store = Store::connect(&Secret::new(services.database_url()), None).unwrap();
    // A database without the tables (the local layout): a normal case.
    assert_eq!(store.roster(DEMO_LOCATION).await.unwrap(), None);
    assert_eq!(
        store
            .known_transactions(DEMO_LOCATION, &["x".into()])
            .await
            .unwrap(),
        None
    );
    services.psql(&format!(
        "CREATE TABLE workers (id uuid PRIMARY KEY, location_id uuid, name text, email text);
         CREATE TABLE transactions (id uuid PRIMARY KEY, location_id uuid, total numeric);
         INSERT INTO workers VALUES
           ('3c0e1b8a-5d7f-4a2e-9b61-0f4d8c2a7e15', '{DEMO_LOCATION}', 'Allison', 'a@x'),
           ('a7d2e9f4-1b3c-4e8a-8f5d-6c9b0e2a4d71', '{DEMO_LOCATION}', 'Carlo', NULL),
           ('11111111-1b3c-4e8a-8f5d-6c9b0e2a4d71', '00000000-0000-4000-8000-000000000000', 'Elsewhere', NULL);
         INSERT INTO transactions VALUES
           ('0b7c52a3-27a4-4d39-a3a8-7c1e0f5d9b21', '{DEMO_LOCATION}', 12.5),
           ('9a7c52a3-27a4-4d39-a3a8-7c1e0f5d9b21', '00000000-0000-4000-8000-000000000000', 1);"
    ));
    let roster = store.roster(DEMO_LOCATION).await.unwrap().unwrap();
    assert_eq!(
        roster,
        [
            RosterEntry {
                id: "3c0e1b8a-5d7f-4a2e-9b61-0f4d8c2a7e15".into(),
                name: "Allison".into()
            },
            RosterEntry {
                id: "a7d2e9f4-1b3c-4e8a-8f5d-6c9b0e2a4d71".into(),
                name: "Carlo".into()
            },
        ]
    );
    let empty = store
        .roster("22222222-2222-4222-8222-222222222222")
        .await
        .unwrap();
    assert_eq!(empty, Some(Vec::new()));
    let known = store
        .known_transactions(
            DEMO_LOCATION,
            &[
                "0b7c52a3-27a4-4d39-a3a8-7c1e0f5d9b21".into(),
                "9a7c52a3-27a4-4d39-a3a8-7c1e0f5d9b21".into(),
                "not-a-uuid".into(),
            ],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        known.into_iter().collect::<Vec<_>>(),
        ["0b7c52a3-27a4-4d39-a3a8-7c1e0f5d9b21"]
    );
}

fn batcher() -> BatcherHandle {
    spawn_batcher(it::default_encoders()).unwrap().0
}

/// The demo location with real copies of its samples (so that one can be changed).
fn demo_samples(root: &Path) {
    let from = it::demo_location();
    let to = root.join(DEMO_LOCATION);
    for entry in std::fs::read_dir(from.join("voice_samples")).unwrap() {
        let dir = entry.unwrap().path();
        let target = to.join("voice_samples").join(dir.file_name().unwrap());
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, target.join(file.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(from.join("workers.csv"), to.join("workers.csv")).unwrap();
}

/// What any profile store gives `Profiles`: enrolled once, then from memory; a fresh
/// `Profiles` (another worker) loads them with their calibration; a changed sample, or
/// `force`, enrolls again.
async fn enrolled_once_then_loaded(
    store: Arc<dyn ProfileStore>,
    data: &Path,
    on_stored: impl Fn(),
) {
    let source = Arc::new(LocalSource::new(data));
    let batcher = batcher();
    let profiles = || Profiles::new(source.clone(), Arc::clone(&store), it::default_prior());
    let origin = |p: Profiles, force: bool| {
        let batcher = batcher.clone();
        async move { p.get(&batcher, DEMO_LOCATION, force).await.unwrap().origin }
    };

    let first = profiles();
    let enrolled = first.get(&batcher, DEMO_LOCATION, false).await.unwrap();
    assert_eq!(enrolled.origin, Origin::Enrolled);
    assert_eq!(enrolled.profiles.profiles.len(), 3);
    on_stored();
    assert_eq!(origin(first, false).await, Origin::Memory);

    // Another worker (a fresh cache) finds them in the store: no enrollment.
    let loaded = profiles()
        .get(&batcher, DEMO_LOCATION, false)
        .await
        .unwrap();
    assert_eq!(loaded.origin, Origin::Store);
    assert_eq!(
        loaded.profiles.calibration, enrolled.profiles.calibration,
        "the calibration is stored with the profiles"
    );
    for (a, b) in enrolled
        .profiles
        .profiles
        .iter()
        .zip(loaded.profiles.profiles.iter())
    {
        assert_eq!((&a.worker_id, &a.name), (&b.worker_id, &b.name));
        assert_eq!(a.embedding, b.embedding);
        assert_eq!(a.weak_profile, b.weak_profile);
    }

    // One of Carlo's samples is replaced: enrolled again.
    let samples = data.join(DEMO_LOCATION).join("voice_samples");
    std::fs::copy(samples.join("Carlo/02.wav"), samples.join("Carlo/01.wav")).unwrap();
    assert_eq!(origin(profiles(), false).await, Origin::Enrolled);
    assert_eq!(origin(profiles(), false).await, Origin::Store);
    // Forced (dispatcher enroll): enrolled whatever is kept.
    assert_eq!(origin(profiles(), true).await, Origin::Enrolled);
}

#[tokio::test]
async fn profiles_are_stored_and_enrolled_again_only_when_the_samples_change() {
    let services = Services::new("profiles");
    let data = TempDir::new("profiles");
    demo_samples(data.path());
    let store = Store::connect(&Secret::new(services.database_url()), None).unwrap();
    store.migrate().await.unwrap();
    let carlo = "SELECT sample_checksums::text FROM voice_profiles WHERE worker_id LIKE 'a7d2%'";
    let before = std::sync::Mutex::new(String::new());
    enrolled_once_then_loaded(Arc::new(store.clone()), data.path(), || {
        let rows = services.psql(
            "SELECT string_agg(worker_id || ':' || jsonb_array_length(sample_checksums), ',' ORDER BY worker_id)
             FROM voice_profiles",
        );
        assert_eq!(
            rows,
            "3c0e1b8a-5d7f-4a2e-9b61-0f4d8c2a7e15:4,a7d2e9f4-1b3c-4e8a-8f5d-6c9b0e2a4d71:4,e5b8c1d4-9a2f-4c7e-b3d6-8e1f0a5c2b97:4"
        );
        *before.lock().unwrap() = services.psql(carlo);
    })
    .await;
    assert_ne!(
        *before.lock().unwrap(),
        services.psql(carlo),
        "the new sample's checksum is stored"
    );

    // With a `workers` table, it is the roster: one without a row for the location has nobody.
    services.psql("CREATE TABLE workers (id uuid, location_id uuid, name text)");
    let source = Arc::new(LocalSource::new(data.path()));
    let e = Profiles::new(source, Arc::new(store), it::default_prior())
        .get(&batcher(), DEMO_LOCATION, false)
        .await
        .err();
    assert!(matches!(e, Some(ProfileError::NoRoster(_))), "{e:?}");
}

/// Without a database, the profiles live in the process' memory store, which keeps them as
/// Postgres does.
#[tokio::test]
async fn profiles_in_memory_are_kept_as_in_the_database() {
    let data = TempDir::new("profiles-memory");
    demo_samples(data.path());
    let store = Arc::new(pipeline::profile_store::MemoryProfileStore::default());
    enrolled_once_then_loaded(store, data.path(), || {}).await;
}

#[test]
fn dispatcher_enroll_stores_the_profiles_and_prints_them() {
    let services = Services::new("enroll");
    let data = TempDir::new("enroll");
    demo_samples(data.path());
    let mut cmd = services.command("dispatcher", data.path());
    let out = cmd.args(["enroll", DEMO_LOCATION]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Allison") && stdout.contains("3 profile(s) and the calibration stored"),
        "{stdout}"
    );
    assert!(stdout.contains("threshold 0."), "{stdout}");
    assert_eq!(services.psql("SELECT count(*) FROM voice_profiles"), "3");
    assert_eq!(
        services.psql(
            "SELECT (calibration->'rules'->>'threshold')::real >= 0.5 FROM voice_calibrations"
        ),
        "t",
        "the calibration is stored, never under the model's prior"
    );

    let usage = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(binary("dispatcher"));
        cmd.current_dir(root())
            .args(args)
            .env_remove("DATABASE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = usage(&["enroll", DEMO_LOCATION], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
    let out = usage(&["enroll", "not-a-uuid"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_location_without_workers_in_the_workers_table_publishes_nothing() {
    let services = Services::new("noroster");
    let data = TempDir::new("noroster");
    it::demo_copies(data.path(), 3, "2025-10-06");
    services.psql(
        "CREATE TABLE workers (id uuid PRIMARY KEY, location_id uuid NOT NULL, name text);
         INSERT INTO workers VALUES ('3c0e1b8a-5d7f-4a2e-9b61-0f4d8c2a7e15',
                                     '00000000-0000-4000-8000-000000000000', 'Allison');",
    );
    let out = services
        .command("dispatcher", data.path())
        .args(["run", DEMO_LOCATION, "2025-10-06"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("has no workers in the `workers` table: nothing was published"),
        "{stderr}"
    );
    let queued: u64 = services.queues().values().map(|(r, u)| r + u).sum();
    assert_eq!(queued, 0);
    assert_eq!(services.psql("SELECT count(*) FROM voice_jobs"), "0");
}
