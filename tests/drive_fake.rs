//! A local Google Drive: the OAuth token endpoint a service-account key names in `token_uri`,
//! and REST v3 `files.list` / `files.get?alt=media` over an in-memory tree, as documented:
//! the `q` subset this system uses (`name =`, `name contains` as a prefix, `mimeType =`,
//! `trashed = false`, `'id' in parents`, joined by `and`), paging with `pageSize` and opaque
//! `nextPageToken`s (at most `max_page` files a page, as Drive may return fewer than asked),
//! Google's error bodies, and `Authorization: Bearer` checked on every call.

use std::sync::OnceLock;

use base64::Engine as _;
use md5::Digest;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const FOLDER: &str = "application/vnd.google-apps.folder";

#[derive(Clone, Debug)]
pub struct DriveEntry {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub parent: Option<String>,
    pub bytes: Vec<u8>,
    pub trashed: bool,
}

pub fn folder(id: &str, name: &str, parent: Option<&str>) -> DriveEntry {
    DriveEntry {
        id: id.into(),
        name: name.into(),
        mime: FOLDER.into(),
        parent: parent.map(Into::into),
        bytes: Vec::new(),
        trashed: false,
    }
}

pub fn file(id: &str, name: &str, parent: &str, bytes: Vec<u8>) -> DriveEntry {
    let mime = if name.ends_with(".txt") {
        "text/plain"
    } else {
        "audio/wav"
    };
    DriveEntry {
        id: id.into(),
        name: name.into(),
        mime: mime.into(),
        parent: Some(parent.into()),
        bytes,
        trashed: false,
    }
}

pub struct FakeDrive {
    pub server: MockServer,
    /// The access token the token endpoint issues (a secret in the logs' eyes).
    pub token: String,
    /// A service-account key JSON whose `token_uri` is this server.
    pub key_json: String,
    pub private_key: String,
}

pub const CLIENT_EMAIL: &str = "voice-reader@voice-test.iam.gserviceaccount.com";

/// A fresh RSA key (PKCS#8 PEM) from `openssl`, made once per test run.
pub fn private_key() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(out.status.success(), "openssl genpkey failed");
        String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}

impl FakeDrive {
    pub async fn start(entries: Vec<DriveEntry>, max_page: usize) -> Self {
        let server = MockServer::start().await;
        let token = "ya29.planted-drive-token-5d1c".to_string();
        let token_uri = format!("{}/token", server.uri());
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(TokenEndpoint {
                token: token.clone(),
                audience: token_uri.clone(),
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/drive/v3/files"))
            .respond_with(Listing {
                entries: entries.clone(),
                token: token.clone(),
                max_page,
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/drive/v3/files/[^/]+$"))
            .respond_with(Media {
                entries,
                token: token.clone(),
            })
            .with_priority(10)
            .mount(&server)
            .await;
        let private_key = private_key();
        let key_json = serde_json::json!({
            "type": "service_account",
            "project_id": "voice-test",
            "private_key_id": "0123456789abcdef",
            "private_key": private_key,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string();
        Self {
            server,
            token,
            key_json,
            private_key,
        }
    }

    /// The `q` of every files.list request, in order.
    pub async fn queries(&self) -> Vec<String> {
        self.requests("/drive/v3/files")
            .await
            .iter()
            .filter_map(|r| param(r, "q"))
            .collect()
    }

    pub async fn requests(&self, path: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == path)
            .collect()
    }
}

pub fn param(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn google_error(code: u16, reason: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }))
}

fn authorised(request: &Request, token: &str) -> bool {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {token}"))
}

struct TokenEndpoint {
    token: String,
    audience: String,
}

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body);
        let form: Vec<(String, String)> = body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (percent_decoded(k), percent_decoded(v)))
            .collect();
        let get = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let invalid = |why: &str| {
            ResponseTemplate::new(400).set_body_json(
                serde_json::json!({"error": "invalid_grant", "error_description": why}),
            )
        };
        if get("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
            return ResponseTemplate::new(400).set_body_json(
                serde_json::json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}),
            );
        }
        let Some(assertion) = get("assertion") else {
            return invalid("missing assertion");
        };
        let parts: Vec<&str> = assertion.split('.').collect();
        let decode = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        };
        let (Some(header), Some(claims)) = (
            parts.first().and_then(|p| decode(p)),
            parts.get(1).and_then(|p| decode(p)),
        ) else {
            return invalid("Invalid JWT");
        };
        if parts.len() != 3 || header["alg"] != "RS256" || parts[2].is_empty() {
            return invalid("Invalid JWT Signature.");
        }
        if claims["iss"] != CLIENT_EMAIL
            || claims["aud"] != self.audience.as_str()
            || !claims["scope"]
                .as_str()
                .is_some_and(|s| s.split(' ').any(|s| s.ends_with("/auth/drive.readonly")))
        {
            return invalid("Invalid JWT claims");
        }
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": self.token, "expires_in": 3599, "token_type": "Bearer"
        }))
    }
}

struct Listing {
    entries: Vec<DriveEntry>,
    token: String,
    max_page: usize,
}

impl Respond for Listing {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorised(request, &self.token) {
            return google_error(401, "authError", "Invalid Credentials");
        }
        let q = param(request, "q").unwrap_or_default();
        let Some(filter) = parse_query(&q) else {
            return google_error(400, "invalid", "Invalid Value");
        };
        let page_size = param(request, "pageSize")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(100)
            .clamp(1, 1000)
            .min(self.max_page);
        let offset = match param(request, "pageToken") {
            None => 0,
            Some(t) => match t.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => return google_error(400, "invalid", "Invalid Value"),
            },
        };
        let matching: Vec<&DriveEntry> = self.entries.iter().filter(|e| filter(e)).collect();
        let page: Vec<serde_json::Value> = matching
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|e| {
                let mut v = serde_json::json!({
                    "id": e.id, "name": e.name, "mimeType": e.mime,
                    "createdTime": "2025-10-06T07:00:00.000Z",
                });
                if e.mime != FOLDER {
                    v["size"] = e.bytes.len().to_string().into();
                    let sum: String = md5::Md5::digest(&e.bytes)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    v["md5Checksum"] = sum.into();
                }
                v
            })
            .collect();
        let mut body = serde_json::json!({"kind": "drive#fileList", "files": page});
        if offset + page_size < matching.len() {
            body["nextPageToken"] = format!("page-{}", offset + page_size).into();
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

struct Media {
    entries: Vec<DriveEntry>,
    token: String,
}

impl Respond for Media {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorised(request, &self.token) {
            return google_error(401, "authError", "Invalid Credentials");
        }
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        match self.entries.iter().find(|e| e.id == id) {
            Some(e) if param(request, "alt").as_deref() == Some("media") && e.mime != FOLDER => {
                ResponseTemplate::new(200).set_body_bytes(e.bytes.clone())
            }
            Some(_) => google_error(
                403,
                "fileNotDownloadable",
                "Only files with binary content can be downloaded.",
            ),
            None => google_error(404, "notFound", &format!("File not found: {id}.")),
        }
    }
}

type Filter = Box<dyn Fn(&DriveEntry) -> bool + Send + Sync>;

/// The `q` subset: clauses joined by `and`; `None` for anything else (Drive's 400).
fn parse_query(q: &str) -> Option<Filter> {
    let tokens = tokenize(q)?;
    let mut clauses: Vec<Filter> = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        let (clause, after): (Filter, _) = match rest {
            [Tok::Word(f), Tok::Word(op), Tok::Str(v), tail @ ..]
                if f == "name" && op == "contains" =>
            {
                let v = v.clone();
                (Box::new(move |e: &DriveEntry| e.name.starts_with(&v)), tail)
            }
            [Tok::Word(f), Tok::Eq, Tok::Str(v), tail @ ..] if f == "name" => {
                let v = v.clone();
                (Box::new(move |e: &DriveEntry| e.name == v), tail)
            }
            [Tok::Word(f), Tok::Eq, Tok::Str(v), tail @ ..] if f == "mimeType" => {
                let v = v.clone();
                (Box::new(move |e: &DriveEntry| e.mime == v), tail)
            }
            [Tok::Word(f), Tok::Eq, Tok::Word(v), tail @ ..]
                if f == "trashed" && (v == "false" || v == "true") =>
            {
                let want = v == "true";
                (Box::new(move |e: &DriveEntry| e.trashed == want), tail)
            }
            [Tok::Str(id), Tok::Word(op), Tok::Word(f), tail @ ..]
                if op == "in" && f == "parents" =>
            {
                let id = id.clone();
                (
                    Box::new(move |e: &DriveEntry| e.parent.as_deref() == Some(id.as_str())),
                    tail,
                )
            }
            _ => return None,
        };
        clauses.push(clause);
        match after {
            [] => break,
            [Tok::Word(and), tail @ ..] if and == "and" => rest = tail,
            _ => return None,
        }
    }
    Some(Box::new(move |e: &DriveEntry| clauses.iter().all(|c| c(e))))
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Eq,
}

fn tokenize(q: &str) -> Option<Vec<Tok>> {
    let mut tokens = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Tok::Eq);
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '\\' => s.push(chars.next()?),
                        '\'' => break,
                        other => s.push(other),
                    }
                }
                tokens.push(Tok::Str(s));
            }
            c if c.is_ascii_alphanumeric() => {
                let mut w = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric()) {
                    w.push(c);
                    chars.next();
                }
                tokens.push(Tok::Word(w));
            }
            _ => return None,
        }
    }
    Some(tokens)
}

/// `application/x-www-form-urlencoded` value: `+` is a space, `%XX` a byte.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
