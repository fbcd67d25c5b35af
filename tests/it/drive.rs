//! Contract tests of the Google Drive source against a local Drive that follows the documented
//! API (`it::drive_fake`): the token exchange, the `q` strings and paging of `files.list`,
//! streamed downloads into private temporary files, and every failure the API documents.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use adapters::drive::{DriveConfig, DriveSource};
use it::drive_fake::{DriveEntry, FakeDrive, file, folder, param};
use ops::Secret;
use pipeline::source::{CivilDate, ClipSource, SourceError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const LOCATION: &str = "8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e";
const TX: &str = "0b7c52a3-27a4-4d39-a3a8-7c1e0f5d9b21";

/// Samples (two worker folders and one loose file), two clips folders of the day, one of the
/// next day, a trashed clip and a text file.
fn tree() -> Vec<DriveEntry> {
    let mut trashed = file(
        "clipTrashed001",
        "till1_trashed.wav",
        "fClips0700",
        vec![9; 10],
    );
    trashed.trashed = true;
    vec![
        folder("fSamples00001", "Cary Voice Samples", None),
        folder("fAllison00001", "Allison", Some("fSamples00001")),
        file("sAllison00001", "01.wav", "fAllison00001", vec![1; 100]),
        file("sAllison00002", "02.wav", "fAllison00001", vec![2; 100]),
        folder("fCarlo0000001", "Carlo", Some("fSamples00001")),
        file("sCarlo0000001", "01.wav", "fCarlo0000001", vec![3; 100]),
        file("sJune00000001", "June.wav", "fSamples00001", vec![4; 100]),
        folder("fClips0700", "Clips_2025-10-06_0700", None),
        folder("fClips1500", "Clips_2025-10-06_1500", None),
        folder("fClipsNext", "Clips_2025-10-07_0700", None),
        file(
            "clipA0000001",
            &format!("till1_{TX}.wav"),
            "fClips0700",
            vec![5; 1000],
        ),
        file("clipB0000001", "till2_b.wav", "fClips0700", vec![6; 1000]),
        file("clipC0000001", "till3_c.wav", "fClips0700", vec![7; 1000]),
        file("clipD0000001", "till4_d.wav", "fClips1500", vec![8; 1000]),
        file("clipE0000001", "till5_e.wav", "fClips1500", vec![8; 999]),
        file(
            "notes0000001",
            "notes.txt",
            "fClips1500",
            b"not audio".to_vec(),
        ),
        trashed,
        file("clipNext0001", "till9_next.wav", "fClipsNext", vec![1; 10]),
    ]
}

fn source(drive: &FakeDrive) -> DriveSource {
    let mut config = DriveConfig::new(&drive.server.uri(), Secret::new(drive.key_json.clone()));
    config.retry_delays = vec![Duration::from_millis(100); 3];
    config.request_timeout = Duration::from_secs(5);
    DriveSource::new(config, "Cary Voice Samples", "Clips_{date}_*").unwrap()
}

fn day() -> CivilDate {
    CivilDate::parse("2025-10-06").unwrap()
}

fn assert_no_secret(drive: &FakeDrive, text: &str) {
    assert!(
        !text.contains(&drive.token),
        "the access token leaked: {text}"
    );
    let key_line = drive.private_key.lines().nth(3).unwrap_or("-");
    assert!(!text.contains(key_line), "the private key leaked: {text}");
}

/// Temporary downloads of this process still on disk.
fn temp_files() -> usize {
    let prefix = format!("voice-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_days_clips_come_from_every_matching_folder_over_all_pages() {
    let drive = FakeDrive::start(tree(), 2).await;
    let source = source(&drive);
    let clips = source.list_clips(LOCATION, day()).await.unwrap();
    let names: Vec<&str> = clips.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            &format!("till1_{TX}.wav") as &str,
            "till2_b.wav",
            "till3_c.wav",
            "till4_d.wav",
            "till5_e.wav"
        ]
    );
    let first = &clips[0];
    assert_eq!(first.key, format!("{LOCATION}/2025-10-06/till1_{TX}.wav"));
    assert_eq!(first.transaction_id.as_deref(), Some(TX));
    assert_eq!(first.address, "clipA0000001");
    assert_eq!(first.size, 1000);
    assert_eq!(
        first.version.len(),
        32,
        "the md5Checksum is the clip's version"
    );
    assert_ne!(clips[3].version, clips[4].version);

    let queries = drive.queries().await;
    assert_eq!(
        queries[0],
        "mimeType = 'application/vnd.google-apps.folder' and trashed = false \
         and name contains 'Clips_2025-10-06_'"
    );
    assert!(queries.contains(&"'fClips0700' in parents and trashed = false".to_string()));
    assert!(queries.contains(&"'fClips1500' in parents and trashed = false".to_string()));
    assert!(!queries.iter().any(|q| q.contains("fClipsNext")));
    let lists = drive.requests("/drive/v3/files").await;
    // Two folders, then 4 + 3 files (trashed ones are not even sent), two a page: 1 + 2 + 2 pages.
    assert_eq!(lists.len(), 5, "{queries:?}");
    let paged: Vec<String> = lists.iter().filter_map(|r| param(r, "pageToken")).collect();
    assert_eq!(paged, ["page-2", "page-2"]);
    for r in &lists {
        assert_eq!(param(r, "pageSize").as_deref(), Some("1000"));
        assert_eq!(param(r, "supportsAllDrives").as_deref(), Some("true"));
        assert_eq!(
            param(r, "includeItemsFromAllDrives").as_deref(),
            Some("true")
        );
        assert_eq!(
            param(r, "fields").as_deref(),
            Some("nextPageToken,files(id,name,mimeType,size,md5Checksum,createdTime)")
        );
        assert_eq!(
            r.headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {}", drive.token).as_str())
        );
    }
    // One token for all of it: yup-oauth2 caches it.
    assert_eq!(drive.requests("/token").await.len(), 1);

    // A day with no folder is an empty day, not an error.
    let none = source
        .list_clips(LOCATION, CivilDate::parse("2025-10-08").unwrap())
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn samples_are_listed_by_owner_with_their_checksums() {
    let drive = FakeDrive::start(tree(), 1000).await;
    let source = source(&drive);
    let samples = source.list_samples(LOCATION).await.unwrap();
    let owners: Vec<(&str, &str)> = samples
        .iter()
        .map(|s| (s.owner.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        owners,
        [
            ("Allison", "01.wav"),
            ("Allison", "02.wav"),
            ("Carlo", "01.wav"),
            ("June", "June.wav")
        ]
    );
    assert!(samples.iter().all(|s| s.checksum.len() == 32));
    assert_eq!(
        drive.queries().await[0],
        "mimeType = 'application/vnd.google-apps.folder' and trashed = false \
         and name = 'Cary Voice Samples'"
    );
    // Listed again within a minute: served from memory, no new call.
    let calls = drive.requests("/drive/v3/files").await.len();
    source.list_samples(LOCATION).await.unwrap();
    assert_eq!(drive.requests("/drive/v3/files").await.len(), calls);

    // A samples folder nobody shared is a clear, permanent error.
    let mut config = DriveConfig::new(&drive.server.uri(), Secret::new(drive.key_json.clone()));
    config.retry_delays = Vec::new();
    let elsewhere = DriveSource::new(config, "Durham Voice Samples", "Clips_{date}_*").unwrap();
    let e = elsewhere.list_samples(LOCATION).await.unwrap_err();
    assert!(!e.is_transient());
    assert!(
        e.to_string()
            .contains("no folder named `Durham Voice Samples`"),
        "{e}"
    );
}

#[tokio::test]
async fn downloads_go_to_private_temporary_files_removed_after_use() {
    let drive = FakeDrive::start(tree(), 1000).await;
    let source = source(&drive);
    let clips = source.list_clips(LOCATION, day()).await.unwrap();
    let before = temp_files();
    let fetched = source.fetch_clip(LOCATION, &clips[0]).await.unwrap();
    assert_eq!(std::fs::read(fetched.path()).unwrap(), vec![5; 1000]);
    let mode = std::fs::metadata(fetched.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "customer audio is private to the service user"
    );
    assert!(fetched.path().to_string_lossy().ends_with(".wav"));
    let media = drive.requests("/drive/v3/files/clipA0000001").await;
    assert_eq!(param(&media[0], "alt").as_deref(), Some("media"));
    assert_eq!(
        param(&media[0], "supportsAllDrives").as_deref(),
        Some("true")
    );
    let path = fetched.path().to_path_buf();
    drop(fetched);
    assert!(!path.exists(), "the temporary copy is removed after use");

    // A file that has gone since it was listed: permanent, and nothing is left behind.
    let mut gone = clips[0].clone();
    gone.address = "deletedFile0001".into();
    let e = source.fetch_clip(LOCATION, &gone).await.unwrap_err();
    assert_eq!(e.kind(), "drive_not_found");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("File not found"), "{e}");
    // A message naming something that is not a Drive id is refused before any call.
    let mut forged = clips[0].clone();
    forged.address = "../../etc/passwd".into();
    let e = source.fetch_clip(LOCATION, &forged).await.unwrap_err();
    assert!(matches!(e, SourceError::BadClip { .. }), "{e}");
    assert_eq!(temp_files(), before);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let drive = FakeDrive::start(tree(), 1000).await;
    let once = |status: u16, body: serde_json::Value| {
        Mock::given(method("GET"))
            .and(path("/drive/v3/files"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .up_to_n_times(1)
            .with_priority(2)
    };
    once(
        429,
        serde_json::json!({"error": {"code": 429, "message": "Rate Limit Exceeded"}}),
    )
    .mount(&drive.server)
    .await;
    let started = Instant::now();
    // 429 with Retry-After: mounted over the plain 429 above, answered first.
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(
                    serde_json::json!({"error": {"code": 429, "message": "Too Many Requests"}}),
                ),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&drive.server)
        .await;
    let samples = source(&drive).list_samples(LOCATION).await.unwrap();
    assert_eq!(samples.len(), 4);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );

    // 403 userRateLimitExceeded, then 500, then the answer.
    let drive = FakeDrive::start(tree(), 1000).await;
    once(
        403,
        serde_json::json!({"error": {"code": 403, "message": "User Rate Limit Exceeded",
            "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded"}]}}),
    )
    .mount(&drive.server)
    .await;
    let source = source(&drive);
    let clips = source.list_clips(LOCATION, day()).await.unwrap();
    assert_eq!(clips.len(), 5);
    Mock::given(method("GET"))
        .and(path("/drive/v3/files/clipA0000001"))
        .respond_with(ResponseTemplate::new(500).set_body_string("backend error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&drive.server)
        .await;
    let fetched = source.fetch_clip(LOCATION, &clips[0]).await.unwrap();
    assert_eq!(std::fs::read(fetched.path()).unwrap().len(), 1000);
}

/// A local Drive whose every `files.list` answers `status` with `body`.
async fn listing_fails_with(status: u16, body: serde_json::Value) -> FakeDrive {
    let drive = FakeDrive::start(tree(), 1000).await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .with_priority(1)
        .mount(&drive.server)
        .await;
    drive
}

/// Two tills' folders of one day may hold files of the same name: both are sales, so both are
/// kept (the second under its file id, with a warning). Before, the second was skipped, and the
/// check was a scan of every clip listed so far (quadratic in the day's clips).
#[tokio::test]
async fn same_named_clips_in_two_folders_are_both_kept() {
    let drive = FakeDrive::start(
        vec![
            folder("fClips0700", "Clips_2025-10-06_0700", None),
            folder("fClips1500", "Clips_2025-10-06_1500", None),
            file("clipMorning01", "recording.wav", "fClips0700", vec![1; 100]),
            file("clipEvening01", "recording.wav", "fClips1500", vec![2; 100]),
        ],
        1000,
    )
    .await;
    let clips = source(&drive).list_clips(LOCATION, day()).await.unwrap();
    let mut keys: Vec<&str> = clips.iter().map(|c| c.key.as_str()).collect();
    keys.sort_unstable();
    let plain = format!("{LOCATION}/2025-10-06/recording.wav");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&plain.as_str()), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with(&format!("{plain}#clip"))),
        "{keys:?}"
    );
    let mut files: Vec<&str> = clips.iter().map(|c| c.address.as_str()).collect();
    files.sort_unstable();
    assert_eq!(files, ["clipEvening01", "clipMorning01"]);
}

#[tokio::test]
async fn persistent_failures_end_with_the_apis_message_and_no_secret() {
    // 503 for ever: four tries (three retries), then a transient error.
    let drive = listing_fails_with(503, serde_json::json!({"error": {"code": 503, "message": "The service is currently unavailable."}}),).await;
    let e = source(&drive)
        .list_clips(LOCATION, day())
        .await
        .unwrap_err();
    assert!(e.is_transient());
    assert_eq!(e.kind(), "drive_server_error");
    assert!(e.to_string().contains("currently unavailable"), "{e}");
    assert_eq!(drive.requests("/drive/v3/files").await.len(), 4);
    assert_no_secret(&drive, &e.to_string());

    // 401 for ever: one fresh token, then a permanent error.
    let drive = listing_fails_with(
        401,
        serde_json::json!(
            {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                       "errors": [{"reason": "authError"}]}}),
    )
    .await;
    let e = source(&drive)
        .list_clips(LOCATION, day())
        .await
        .unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.kind(), "drive_unauthorized");
    assert!(
        e.to_string().contains("invalid authentication credentials"),
        "{e}"
    );
    assert_eq!(drive.requests("/drive/v3/files").await.len(), 2);
    assert_eq!(
        drive.requests("/token").await.len(),
        2,
        "the retry uses a fresh token"
    );
    assert_no_secret(&drive, &e.to_string());

    // 403 without a rate-limit reason (the folder is not shared): permanent at once.
    let drive = listing_fails_with(403, serde_json::json!(
            {"error": {"code": 403, "message": "The user does not have sufficient permissions for this file.",
                       "errors": [{"reason": "insufficientFilePermissions"}]}})).await;
    let e = source(&drive).list_samples(LOCATION).await.unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(drive.requests("/drive/v3/files").await.len(), 1);
}

#[tokio::test]
async fn a_request_that_hangs_times_out_as_a_transient_failure() {
    let drive = FakeDrive::start(tree(), 1000).await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(3))
                .set_body_json(serde_json::json!({"files": []})),
        )
        .with_priority(1)
        .mount(&drive.server)
        .await;
    let mut config = DriveConfig::new(&drive.server.uri(), Secret::new(drive.key_json.clone()));
    config.retry_delays = vec![Duration::from_millis(50)];
    config.request_timeout = Duration::from_millis(300);
    let source = DriveSource::new(config, "Cary Voice Samples", "Clips_{date}_*").unwrap();
    let started = Instant::now();
    let e = source.list_clips(LOCATION, day()).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.kind(), "drive_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_refused_key_is_permanent_and_a_malformed_one_is_never_quoted() {
    let drive = FakeDrive::start(tree(), 1000).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!(
            {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})))
        .with_priority(1)
        .mount(&drive.server)
        .await;
    let e = source(&drive)
        .list_clips(LOCATION, day())
        .await
        .unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.kind(), "drive_unauthorized");
    assert!(e.to_string().contains("invalid_grant"), "{e}");
    assert_eq!(drive.requests("/drive/v3/files").await.len(), 0);
    assert_no_secret(&drive, &e.to_string());

    let broken = drive.key_json.replacen('{', "{\"oops\" ", 1);
    let Err(e) = DriveSource::new(
        DriveConfig::new(&drive.server.uri(), Secret::new(broken)),
        "Cary Voice Samples",
        "Clips_{date}_*",
    ) else {
        panic!("a malformed key was accepted");
    };
    assert!(e.to_string().contains("GOOGLE_DRIVE_CREDENTIALS"), "{e}");
    assert_no_secret(&drive, &e.to_string());
}

/// The whole way with the real inputs' adapters: the dispatcher lists the day on a local
/// Drive, workers download each clip (and the samples) from it and take turns from a local
/// AssemblyAI, the reducer stores the results; the roster is the `workers` table. Every clip
/// gets its expected employee, no temporary file is left, and none of the planted secrets
/// appears in any log, stored row, error or message. Then the same job standalone (no broker)
/// stores the same rows and the same job row.
#[test]
fn drive_clips_through_assemblyai_to_postgres_with_the_expected_employees() {
    use it::{Child, Services, TempDir, demo_location};
    const AAI_KEY: &str = "aai-planted-key-0c4e";
    const SERVICE_KEY: &str = "sb-planted-service-key-7a90";
    const DB_PASSWORD: &str = "planted-db-password-e21f";

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let aai = runtime.block_on(it::fake_assemblyai(Duration::from_millis(20), false));

    // The Drive: the demo's samples, and its clips twice over (new transaction ids), in two
    // folders of the day; a trashed copy and a text file that must be ignored.
    let demo = demo_location();
    let mut entries = vec![
        folder("fSamples00001", "Cary Voice Samples", None),
        folder("fClips0700", "Clips_2025-10-06_0700", None),
        folder("fClips1500", "Clips_2025-10-06_1500", None),
        folder("fClipsNext", "Clips_2025-10-07_0700", None),
    ];
    let mut samples: Vec<_> = std::fs::read_dir(demo.join("voice_samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    samples.sort();
    for (w, dir) in samples.iter().enumerate() {
        let id = format!("fWorker{w:06}");
        entries.push(folder(
            &id,
            &dir.file_name().unwrap().to_string_lossy(),
            Some("fSamples00001"),
        ));
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for (i, f) in files.iter().enumerate() {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            entries.push(file(
                &format!("sSample{w:02}{i:04}"),
                &name,
                &id,
                std::fs::read(f).unwrap(),
            ));
        }
    }
    let mut reader = csv::Reader::from_path(it::root().join("demo/expected.csv")).unwrap();
    let sources: Vec<(String, String)> = reader
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect();
    let mut expected = std::collections::BTreeMap::new();
    let mut transactions = Vec::new();
    for i in 0..2 * sources.len() {
        let (original, outcome) = &sources[i % sources.len()];
        let ext = original.rsplit('.').next().unwrap();
        let tx = format!("{i:08x}-0000-4000-8000-{:012x}", i * 7919);
        let name = format!("till1_{tx}.{ext}");
        let parent = if i % 2 == 0 {
            "fClips0700"
        } else {
            "fClips1500"
        };
        let bytes = std::fs::read(demo.join("clips/2025-10-06").join(original)).unwrap();
        entries.push(file(&format!("clip{i:08}"), &name, parent, bytes));
        expected.insert(name, outcome.clone());
        transactions.push(tx);
    }
    let mut trashed = file(
        "clipTrashed001",
        "till9_trashed.wav",
        "fClips0700",
        vec![0; 64],
    );
    trashed.trashed = true;
    entries.push(trashed);
    entries.push(file(
        "notes0000001",
        "notes.txt",
        "fClips1500",
        b"shift notes".to_vec(),
    ));
    entries.push(file(
        "clipNext0001",
        "till9_next.wav",
        "fClipsNext",
        vec![0; 64],
    ));
    let drive = runtime.block_on(FakeDrive::start(entries, 4));

    let services = Services::new("drive_e2e");
    let data = TempDir::new("drive-e2e");
    let tmp = data.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let roster = std::fs::read_to_string(demo.join("workers.csv")).unwrap();
    let mut sql = String::from(
        "CREATE TABLE workers (id uuid PRIMARY KEY, location_id uuid NOT NULL, name text NOT NULL);
         CREATE TABLE transactions (id uuid PRIMARY KEY, location_id uuid NOT NULL);",
    );
    for line in roster.lines().skip(1) {
        let (id, name) = line.split_once(',').unwrap();
        sql.push_str(&format!(
            "INSERT INTO workers VALUES ('{id}', '{LOCATION}', '{name}');"
        ));
    }
    for tx in transactions.iter().take(10) {
        sql.push_str(&format!(
            "INSERT INTO transactions VALUES ('{tx}', '{LOCATION}');"
        ));
    }
    services.psql(&sql);

    let database_url = format!(
        "postgres://postgres:{DB_PASSWORD}@127.0.0.1:5432/{}",
        services.database
    );
    let command = |bin: &str| {
        let mut c = services.command(bin, &data.path().join("no-local-clips"));
        c.env("DATABASE_URL", &database_url)
            .env("VOICE_SOURCE", "gdrive")
            .env("GOOGLE_DRIVE_CREDENTIALS", &drive.key_json)
            .env("GOOGLE_DRIVE_BASE_URL", drive.server.uri())
            .env("VOICE_SAMPLES_FOLDER", "Cary Voice Samples")
            .env("VOICE_CLIPS_FOLDER", "Clips_{date}_*")
            .env("VOICE_DIARIZER", "assemblyai")
            .env("AAI_API_KEY", AAI_KEY)
            .env("AAI_BASE_URL", aai.uri())
            .env("SUPABASE_URL", "https://planted.supabase.co")
            .env("SUPABASE_SERVICE_KEY", SERVICE_KEY)
            .env("TMPDIR", &tmp)
            .env("RUST_LOG", "debug");
        c
    };
    let (worker_port, reducer_port) = (it::free_port(), it::free_port());
    let mut reducer_cmd = command("reducer");
    reducer_cmd.args(["--health-check-port", &reducer_port.to_string()]);
    let reducer = Child::spawn(reducer_cmd, data.path().join("reducer.log"));
    let mut worker_cmd = command("worker");
    worker_cmd.args(["--health-check-port", &worker_port.to_string()]);
    let worker = Child::spawn(worker_cmd, data.path().join("worker.log"));
    let out = command("dispatcher")
        .args(["run", LOCATION, "2025-10-06", "--wait", "--verbose"])
        .output()
        .unwrap();
    let dispatcher_log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{dispatcher_log}");
    assert!(
        dispatcher_log.contains("22 clip(s) published"),
        "{dispatcher_log}"
    );
    assert!(
        dispatcher_log.contains("not in `transactions`"),
        "12 of the clips name no known transaction: {dispatcher_log}"
    );

    let rows = services.psql(
        "SELECT clip_name, status, coalesce(worker_name, ''), coalesce(worker_id, ''),
                coalesce(transaction_id::text, '')
         FROM voice_clip_results ORDER BY 1",
    );
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), expected.len(), "one row per clip: {rows:?}");
    for (row, (name, outcome)) in rows.iter().zip(&expected) {
        assert_eq!(row[0], name);
        let ok = match outcome.as_str() {
            "failed" => row[1] == "failed",
            "none" => (row[1] == "no_match" || row[1] == "no_speech") && row[2].is_empty(),
            employee => {
                row[1] == "matched"
                    && row[2] == employee
                    && roster.contains(&format!("{},{employee}", row[3]))
            }
        };
        assert!(ok, "{name}: expected {outcome}, stored {row:?}");
        assert!(name.contains(row[4]) && !row[4].is_empty(), "{row:?}");
    }
    assert_eq!(services.psql("SELECT count(*) FROM voice_profiles"), "3");
    let job = services.psql("SELECT status, total, done FROM voice_jobs");
    assert_eq!(job, "completed|22|22");

    // What the dispatcher asked of Drive, and that every download was cleaned up.
    let queries = runtime.block_on(drive.queries());
    assert!(queries.contains(
        &"mimeType = 'application/vnd.google-apps.folder' and trashed = false and name contains 'Clips_2025-10-06_'"
            .to_string()
    ));
    let all = runtime
        .block_on(drive.server.received_requests())
        .unwrap_or_default();
    let downloads = all
        .iter()
        .filter(|r| r.url.path().starts_with("/drive/v3/files/"))
        .count();
    assert_eq!(downloads, 22 + 12, "every clip and sample downloaded once");
    let lists = runtime.block_on(drive.requests("/drive/v3/files"));
    assert!(
        lists
            .iter()
            .filter(|r| param(r, "pageToken").is_some())
            .count()
            >= 3,
        "paged"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("voice-"))
        .collect();
    assert!(left.is_empty(), "temporary downloads left behind: {left:?}");

    // Planted secrets: nowhere in the logs, the stored rows, the endpoints or a queue.
    let (code, ready) = it::http_get(worker_port, "/ready");
    assert_eq!(code, 200, "{ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    for check in ["broker", "database", "google_drive", "assemblyai"] {
        assert_eq!(ready["checks"][check], true, "{ready}");
    }
    let endpoints: String = [worker_port, reducer_port]
        .iter()
        .flat_map(|p| ["/health", "/ready", "/metrics"].map(|w| it::http_get(*p, w).1))
        .collect();
    assert!(
        endpoints
            .contains("voice_diarization_api_calls_total{outcome=\"ok\",service=\"google_drive\"}")
    );
    assert!(
        endpoints
            .contains("voice_diarization_api_calls_total{outcome=\"ok\",service=\"assemblyai\"}")
    );
    let mut worker = worker;
    let mut reducer = reducer;
    worker.signal("TERM");
    reducer.signal("TERM");
    assert_eq!(worker.wait_for_exit(Duration::from_secs(30)), Some(0));
    assert_eq!(reducer.wait_for_exit(Duration::from_secs(30)), Some(0));
    let stored = services.psql(
        "SELECT (SELECT coalesce(string_agg(r::text, ' '), '') FROM voice_clip_results r) ||
                (SELECT coalesce(string_agg(j::text, ' '), '') FROM voice_jobs j) ||
                (SELECT coalesce(string_agg(p::text, ' '), '') FROM voice_profiles p)",
    );
    let everything = [
        worker.log_text(),
        reducer.log_text(),
        dispatcher_log,
        stored,
        endpoints,
    ]
    .concat();
    let key_line = drive.private_key.lines().nth(3).unwrap();
    let secrets = [
        AAI_KEY,
        SERVICE_KEY,
        DB_PASSWORD,
        key_line,
        drive.token.as_str(),
        "PRIVATE KEY",
    ];
    for secret in secrets {
        assert!(!everything.contains(secret), "`{secret}` leaked");
    }
    services.assert_queues_drain();

    // The seed's job: the same clips, Drive, AssemblyAI and Postgres, in one process without a
    // broker. The same rows and the same job row.
    let results =
        "SELECT clip_key, clip_name, status, coalesce(worker_id, ''), coalesce(worker_name, ''),
                          coalesce(transaction_id::text, ''), coalesce(error_kind, ''), attempts,
                          coalesce(transcript_id, ''), jsonb_array_length(turns), model
                   FROM voice_clip_results ORDER BY clip_key";
    let job_row =
        "SELECT status, total, done, matched, no_match, no_speech, failed, skipped, planned
                   FROM voice_jobs";
    let (distributed_rows, distributed_job) = (services.psql(results), services.psql(job_row));
    services.psql(
        "DELETE FROM voice_clip_results; DELETE FROM voice_jobs; DELETE FROM voice_profiles;
         DELETE FROM voice_calibrations;",
    );
    let out = command("dispatcher")
        .env_remove("AMQP_URL")
        .args(["run", LOCATION, "2025-10-06", "--verbose"])
        .output()
        .unwrap();
    let standalone_log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{standalone_log}");
    assert_eq!(services.psql(results), distributed_rows, "{standalone_log}");
    assert_eq!(services.psql(job_row), distributed_job);
    assert_eq!(services.psql("SELECT count(*) FROM voice_profiles"), "3");
    let stored = services.psql(
        "SELECT (SELECT coalesce(string_agg(r::text, ' '), '') FROM voice_clip_results r) ||
                (SELECT coalesce(string_agg(j::text, ' '), '') FROM voice_jobs j)",
    );
    for secret in secrets {
        assert!(
            !standalone_log.contains(secret) && !stored.contains(secret),
            "`{secret}` leaked"
        );
    }
    let left = std::fs::read_dir(&tmp)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("voice-"))
        })
        .count();
    assert_eq!(left, 0, "temporary downloads left behind");
}

/// Failing API calls are a windowed rate that warns and alerts, never a liveness failure: a
/// worker whose Drive downloads keep failing stays healthy (200) and says why. Before, failures
/// over MAX_API_FAILURES made `/health` 503 for the rest of the process's life, and the
/// liveness probe restarted healthy workers in a loop.
#[test]
fn failing_api_calls_alert_but_never_fail_liveness() {
    use it::{Child, Services, TempDir};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let drive = runtime.block_on(FakeDrive::start(tree(), 1000));
    let (hook_runtime, hook) = it::webhook();
    let services = Services::new("api_failures");
    let data = TempDir::new("api-failures");
    let port = it::free_port();
    let mut command = services.command("worker", data.path());
    command
        .env("VOICE_SOURCE", "gdrive")
        .env("GOOGLE_DRIVE_CREDENTIALS", &drive.key_json)
        .env("GOOGLE_DRIVE_BASE_URL", drive.server.uri())
        .env("VOICE_SAMPLES_FOLDER", "Cary Voice Samples")
        .env("MAX_API_FAILURES", "1")
        .env("MONITORING_WEBHOOK_URL", hook.uri())
        .env_remove("DATABASE_URL")
        .args(["--health-check-port", &port.to_string()]);
    let worker = Child::spawn(command, data.path().join("worker.log"));
    assert_eq!(it::http_get(port, "/health").0, 200);

    // Three clips whose files Drive no longer has: three failed calls, over the limit of 1.
    runtime.block_on(async {
        let config = adapters::broker::BrokerConfig::new(Secret::new(services.amqp_url()));
        let broker = adapters::broker::Broker::connect(&config, "it")
            .await
            .unwrap();
        for i in 0..3 {
            let name = format!("till1_gone{i}.wav");
            let task = pipeline::ClipTask {
                job_id: "job-gone".into(),
                location_id: LOCATION.into(),
                clip: pipeline::source::ClipRef {
                    key: format!("{LOCATION}/2025-10-06/{name}"),
                    name,
                    date: "2025-10-06".into(),
                    transaction_id: None,
                    size: 100,
                    version: format!("gone-{i}"),
                    address: format!("clipGone{i:05}"),
                },
                attempt: 1,
                transcript_id: None,
            };
            it::publish_task(&broker, &task).await;
        }
        broker.close().await;
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        let (code, body) = it::http_get(port, "/health");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        if body["warnings"].as_array().is_some_and(|w| !w.is_empty()) {
            break (code, body);
        }
        assert!(
            Instant::now() < deadline,
            "no warning: {body}\n{}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(health.0, 200, "{}", health.1);
    assert_eq!(health.1["status"], "healthy");
    assert!(
        health.1["warnings"][0]
            .to_string()
            .contains("MAX_API_FAILURES"),
        "{}",
        health.1
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !it::alert_bodies(&hook_runtime, &hook)
        .iter()
        .any(|b| b["event"] == "api_failures")
    {
        assert!(Instant::now() < deadline, "no api_failures alert");
        std::thread::sleep(Duration::from_millis(300));
    }
}
