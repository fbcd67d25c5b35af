use super::*;
use ops::redact_url;

fn env(pairs: &[(&str, &str)]) -> config::Map<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_then_file_then_environment() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert_eq!(s.voice_min_utterance_ms, 1000);
    assert_eq!(s.voice_diarization_threshold, None);

    let dir = std::env::temp_dir().join(format!("cfg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(&file, "voice_min_utterance_ms = 700\nvoice_margin = 0.1\n").unwrap();
    let s = Settings::load_from(Some(&file), env(&[("VOICE_MARGIN", "0.2")])).unwrap();
    assert_eq!(s.voice_min_utterance_ms, 700);
    assert_eq!(
        s.voice_margin,
        Some(0.2),
        "the environment wins over the file"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let s = Settings::load_from(
        None,
        env(&[
            ("AMQP_URL", "amqp://voice:hunter2@mq:5672/%2f"),
            ("DATABASE_URL", "postgres://app:s3cret@db/voice"),
        ]),
    )
    .unwrap();
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
    let amqp = s.amqp_url.unwrap();
    assert_eq!(amqp.redacted(), "amqp://voice:***@mq:5672/%2f");
    let bad = Settings::load_from(None, env(&[("AMQP_URL", "guest:hunter2@mq")])).unwrap_err();
    assert!(!bad.to_string().contains("hunter2"), "{bad}");
    assert!(bad.to_string().contains("AMQP_URL"), "{bad}");
    assert_eq!(amqp.expose(), "amqp://voice:hunter2@mq:5672/%2f");
    assert_eq!(redact_url("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        redact_url("postgres://u:p@ss@h/db?x=@"),
        "postgres://u:***@h/db?x=@"
    );
    assert_eq!(redact_url("amqp://u:ab#cd@h:5673/"), "amqp://***");
    assert_eq!(redact_url("not a url: pw"), "***");
}

/// Whatever the password holds, a URL either loads (percent-encoded, in one spelling every
/// client reads alike) or exits at load naming the variable, never quoting the password.
#[test]
fn service_urls_are_parsed_and_never_quoted() {
    for (raw, password) in [
        ("amqp://guest:ab#cd@host:5673/", "ab#cd"),
        ("amqp://guest:a/b@host/", "a/b"),
        ("amqp://guest:a?b@host/", "a?b"),
        ("amqp://guest:50%@host/", "50%"),
        ("amqp://guest:pw@", "pw"),
        ("http://guest:pw9@host/", "pw9"),
        ("amqp://guest:pw7@ho st/", "pw7"),
    ] {
        let e = Settings::load_from(None, env(&[("AMQP_URL", raw)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AMQP_URL") && !e.contains(password),
            "{raw}: {e}"
        );
        let e = Settings::load_from(
            None,
            env(&[("DATABASE_URL", &raw.replace("amqp", "postgres"))]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("DATABASE_URL") && !e.contains(password),
            "{raw}: {e}"
        );
    }
    // A raw `@` is the parser's to place: the last one ends the user info.
    let s = Settings::load_from(
        None,
        env(&[
            ("AMQP_URL", "amqp://guest:p@ss@mq:5672/%2f"),
            (
                "DATABASE_URL",
                "postgres://app:p@ss@db:5432/voice?sslmode=require",
            ),
        ]),
    )
    .unwrap();
    let amqp = s.amqp_url.unwrap();
    assert_eq!(amqp.expose(), "amqp://guest:p%40ss@mq:5672/%2f");
    assert_eq!(amqp.redacted(), "amqp://guest:***@mq:5672/%2f");
    let db = s.database_url.unwrap();
    assert_eq!(
        db.expose(),
        "postgres://app:p%40ss@db:5432/voice?sslmode=require"
    );
    assert_eq!(
        db.scrub("password p@ss for postgres://app:p%40ss@db:5432/voice?sslmode=require"),
        "password *** for postgres://app:***@db:5432/voice?sslmode=require"
    );
    // Percent-encoded specials load as they are.
    let s =
        Settings::load_from(None, env(&[("AMQP_URL", "amqps://u:a%23b%2Fc%25d@mq/v")])).unwrap();
    assert_eq!(s.amqp_url.unwrap().expose(), "amqps://u:a%23b%2Fc%25d@mq/v");
}

#[test]
fn the_broker_ca_needs_an_amqps_url_and_a_certificate() {
    let dir = std::env::temp_dir().join(format!("cfg-test-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ca.pem");
    std::fs::write(&file, "no certificate here").unwrap();
    let ca = file.to_string_lossy().into_owned();
    let e = Settings::load_from(
        None,
        env(&[("AMQP_URL", "amqps://mq/"), ("AMQP_CA_CERT", &ca)]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("AMQP_CA_CERT") && e.contains("no certificate"),
        "{e}"
    );
    let e = Settings::load_from(
        None,
        env(&[("AMQP_URL", "amqp://mq/"), ("AMQP_CA_CERT", &ca)]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("amqps://"), "{e}");
    let e = Settings::load_from(None, env(&[("AMQP_CA_CERT", &ca)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("AMQP_URL"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_values_and_unknown_keys_are_errors() {
    assert!(Settings::load_from(None, env(&[("VOICE_DIARIZATION_THRESHOLD", "abc")])).is_err());
    assert!(Settings::load_from(None, env(&[("VOICE_DIARIZATION_THRESHOLD", "1.5")])).is_err());
    assert!(Settings::load_from(None, env(&[("VOICE_PARALLEL_WORKERS", "0")])).is_err());
    let dir = std::env::temp_dir().join(format!("cfg-test-u-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(&file, "voice_treshold = 0.1\n").unwrap();
    let err = Settings::load_from(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("voice_treshold"), "{err}");
}
